"""Roles and what they may do: one declarative table, synced to Django groups after every migrate.

DESIGN.md "Who may do what" is the specification. Every role reads everything; the table
below lists what each may change. Later features add their permissions here, nowhere else.
"""

from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission, User
from django.db import models


class Role(models.TextChoices):
    RELEASE_MANAGER = "Release Manager"
    CHANGE_APPROVER = "Change Approver"
    EMERGENCY_APPROVER = "Emergency Approver"
    DEPLOYMENT_MANAGER = "Deployment Manager"
    BUILD_ENGINEER = "Build/CI Engineer"
    SERVICE_OWNER = "Service Owner"
    VIEWER = "Viewer"


# Apps whose records every role may read ("read everything, export audit").
READABLE_APPS = ("rdm_site", "cmdb", "releases", "deployments")
# Besides those, every role may see who holds which role.
READ_PERMISSIONS = ("auth.view_user", "auth.view_group")

# "edit CIs, relationships; import CIs". Service Owners hold these too, but cmdb.permissions limits
# them to CIs of services they own; "edit_any" lifts that limit. Taking a baseline changes no CI, so
# the Release Manager, who needs one before and after each release, may take one as well. Environments
# and services are laid out by administrators only, so no role holds their permissions.
_CMDB_EDIT = frozenset(
    {
        "cmdb.add_configurationitem",
        "cmdb.change_configurationitem",
        "cmdb.import_configurationitems",
        "cmdb.add_relationship",
        "cmdb.delete_relationship",
        "cmdb.add_baseline",
    }
)
_CMDB_EDIT_ANY = _CMDB_EDIT | {"cmdb.edit_any_configurationitem"}

# Release governance (releases.permissions explains each refusal; ownership and segregation of duties
# are rules there, not rows here). "approve … (not one's own)": Service Owners approve, start ELS, close
# releases and write their reviews for services they own only; the "*_any_*" permissions lift that limit.
# Reviews are accepted or returned by Release Managers and Service Owners, never by whoever submitted them.
_RELEASES_RELEASE_MANAGER = frozenset(
    {
        "releases.add_release",
        "releases.change_release",
        "releases.add_releasepolicy",
        "releases.change_releasepolicy",
        "releases.add_releasewindow",
        "releases.change_releasewindow",
        "releases.add_freezeperiod",
        "releases.change_freezeperiod",
        "releases.add_changetemplate",
        "releases.change_changetemplate",
        "releases.submit_release",
        "releases.cancel_release",
        "releases.approve_release",
        "releases.approve_any_release",
        "releases.close_release",
        "releases.close_any_release",
        "releases.notify_stakeholders",
        "releases.validate_package",
        "releases.add_changerecord",
        "releases.create_standard_change",
        "releases.review_change",
        "releases.add_rollbackplan",
        "releases.change_rollbackplan",
        "releases.verify_gateevidence",
        "releases.add_knowledgearticle",
        "releases.change_knowledgearticle",
        "releases.decide_review",
    }
)
_RELEASES_CHANGE_APPROVER = frozenset({"releases.assess_change", "releases.approve_change"})
_RELEASES_EMERGENCY_APPROVER = _RELEASES_CHANGE_APPROVER | {
    "releases.approve_emergency_change",
    "releases.override_freeze",
}
_RELEASES_DEPLOYMENT_MANAGER = frozenset(
    {
        "releases.validate_package",
        "releases.add_changerecord",
        "releases.create_standard_change",
        "releases.implement_change",
        "releases.deploy_release",
        "releases.manage_els",
        "releases.manage_any_els",
        "releases.add_rollbackplan",
        "releases.change_rollbackplan",
        "releases.add_gateevidence",
        "releases.verify_gateevidence",
    }
)
_RELEASES_BUILD_ENGINEER = frozenset(
    {
        "releases.register_package",
        "releases.create_standard_change",
        "releases.implement_standard_change",
        "releases.deploy_release",
        "releases.add_gateevidence",
    }
)
_RELEASES_SERVICE_OWNER = frozenset(
    {
        "releases.approve_release",
        "releases.manage_els",
        "releases.close_release",
        "releases.review_change",
        "releases.add_knowledgearticle",
        "releases.change_knowledgearticle",
        "releases.write_review",
        "releases.decide_review",
    }
)

# "schedule, start, pause, resume, abort, roll back deployments; answer manual interventions", and set up
# how a service is deployed (processes, step templates, variables, targets). The Build/CI Engineer runs only
# continuous deployments under standard changes: deployments.services enforces that narrower grant.
_DEPLOYMENTS_CONFIGURE = frozenset(
    {
        "deployments.add_deploymentprocess",
        "deployments.change_deploymentprocess",
        "deployments.add_steptemplate",
        "deployments.change_steptemplate",
        "deployments.delete_steptemplate",
        "deployments.add_variable",
        "deployments.change_variable",
        "deployments.add_target",
        "deployments.change_target",
    }
)
# "open, update, resolve incidents" (acknowledging and closing them too): monitoring opens them through a token.
_INCIDENTS = frozenset({"deployments.add_incident", "deployments.change_incident"})
_DEPLOYMENTS_RUN = _DEPLOYMENTS_CONFIGURE | {"deployments.add_deployment", "deployments.run_deployment"}
_DEPLOYMENTS_RUN_CONTINUOUS = _DEPLOYMENTS_CONFIGURE | {
    "deployments.add_deployment",
    "deployments.run_continuous_deployment",
}

# Webhook subscriptions: those who run releases and pipelines wire them to chat and tools (each manages their own).
_WEBHOOKS = frozenset({"rdm_site.add_webhook", "rdm_site.change_webhook", "rdm_site.delete_webhook"})

# What each role may change, as "app_label.codename".
ROLE_PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.RELEASE_MANAGER: frozenset({"cmdb.add_baseline"}) | _RELEASES_RELEASE_MANAGER | _WEBHOOKS | _INCIDENTS,
    Role.CHANGE_APPROVER: _RELEASES_CHANGE_APPROVER,
    Role.EMERGENCY_APPROVER: _RELEASES_EMERGENCY_APPROVER,
    Role.DEPLOYMENT_MANAGER: _CMDB_EDIT_ANY | _RELEASES_DEPLOYMENT_MANAGER | _DEPLOYMENTS_RUN | _WEBHOOKS | _INCIDENTS,
    Role.BUILD_ENGINEER: _CMDB_EDIT_ANY
    | _RELEASES_BUILD_ENGINEER
    | _DEPLOYMENTS_RUN_CONTINUOUS
    | _WEBHOOKS
    | _INCIDENTS,
    Role.SERVICE_OWNER: _CMDB_EDIT | _RELEASES_SERVICE_OWNER | _INCIDENTS,
    Role.VIEWER: frozenset(),
}


def _permissions(names) -> list[Permission]:
    found = []
    for name in sorted(names):
        app_label, _, codename = name.partition(".")
        try:
            found.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        except Permission.DoesNotExist:
            raise LookupError(f"the role table names an unknown permission {name!r}") from None
    return found


def _read_permissions() -> list[Permission]:
    readable = Permission.objects.filter(content_type__app_label__in=READABLE_APPS, codename__startswith="view_")
    return [*readable, *_permissions(READ_PERMISSIONS)]


def roles_sync() -> None:
    """Make every role group hold exactly the permissions of the table, and every member staff (idempotent)."""
    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    read = _read_permissions()
    for role, names in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role.value)
        group.permissions.set([*read, *_permissions(names)])
    for user in User.objects.filter(groups__name__in=Role.values, is_staff=False).distinct():
        staff_grant(user)


def staff_grant(user: User) -> None:
    """Members of a role are staff: the admin is where they act, within what their roles allow. Losing a role
    does not take staff status away (without roles nothing is left to use it for); an administrator may.
    """
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])


def roles_of(user) -> list[str]:
    return sorted(user.groups.filter(name__in=Role.values).values_list("name", flat=True))
