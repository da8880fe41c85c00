"""Who may do what in release governance (DESIGN.md "Who may do what"), and every refusal explained.

The role table (``rdm_site.roles``) grants the permissions; this module adds what a table cannot say:
ownership (Service Owners act only for their own services) and segregation of duties (nobody approves
what they requested, manage or built). Each ``*_problem`` returns the reason for a refusal, or None.
``actor=None`` is RDM itself acting on its own authority (the deployment engine), never a request.
"""

from collections.abc import Iterable

from django.contrib.auth.models import User

from rdm_site.permissions import (  # noqa: F401 - re-exported: callers ask perms.permission_problem(...)
    any_permission_problem,
    permission_problem,
)

ADD_RELEASE = "releases.add_release"
CHANGE_RELEASE = "releases.change_release"
SUBMIT_RELEASE = "releases.submit_release"
CANCEL_RELEASE = "releases.cancel_release"
APPROVE_RELEASE = "releases.approve_release"
APPROVE_ANY_RELEASE = "releases.approve_any_release"
DEPLOY_RELEASE = "releases.deploy_release"
MANAGE_ELS = "releases.manage_els"
MANAGE_ANY_ELS = "releases.manage_any_els"
CLOSE_RELEASE = "releases.close_release"
CLOSE_ANY_RELEASE = "releases.close_any_release"
NOTIFY_STAKEHOLDERS = "releases.notify_stakeholders"
REGISTER_PACKAGE = "releases.register_package"
VALIDATE_PACKAGE = "releases.validate_package"
CHANGE_ROLLBACK_PLAN = "releases.change_rollbackplan"
ADD_GATE_EVIDENCE = "releases.add_gateevidence"
VERIFY_GATE_EVIDENCE = "releases.verify_gateevidence"
ADD_KNOWLEDGE_ARTICLE = "releases.add_knowledgearticle"
CHANGE_KNOWLEDGE_ARTICLE = "releases.change_knowledgearticle"
ADD_CHANGE = "releases.add_changerecord"
ADD_CHANGE_TEMPLATE = "releases.add_changetemplate"
CHANGE_CHANGE_TEMPLATE = "releases.change_changetemplate"
ADD_POLICY = "releases.add_releasepolicy"
CHANGE_POLICY = "releases.change_releasepolicy"
ADD_WINDOW = "releases.add_releasewindow"
CHANGE_WINDOW = "releases.change_releasewindow"
ADD_FREEZE = "releases.add_freezeperiod"
CHANGE_FREEZE = "releases.change_freezeperiod"
CREATE_STANDARD_CHANGE = "releases.create_standard_change"
ASSESS_CHANGE = "releases.assess_change"
APPROVE_CHANGE = "releases.approve_change"
APPROVE_EMERGENCY_CHANGE = "releases.approve_emergency_change"
IMPLEMENT_CHANGE = "releases.implement_change"
IMPLEMENT_STANDARD_CHANGE = "releases.implement_standard_change"
REVIEW_CHANGE = "releases.review_change"
OVERRIDE_FREEZE = "releases.override_freeze"
WRITE_REVIEW = "releases.write_review"
WRITE_ANY_REVIEW = "releases.write_any_review"
DECIDE_REVIEW = "releases.decide_review"

SOD = "segregation of duties"


def _name(actor: User) -> str:
    return actor.get_username()


def ownership_problem(actor: User | None, services: Iterable, any_permission: str, attempt: str) -> str | None:
    """Service Owners act only for releases of services they own; ``any_permission`` lifts that limit."""
    if actor is None or actor.has_perm(any_permission):
        return None
    services = list(services)
    if any(service.owner_id == actor.pk for service in services):
        return None
    owners = ", ".join(f"{service.name} ({service.owner.get_username()})" for service in services) or "none"
    return (
        f"{_name(actor)} may not {attempt}: Service Owners act only for releases of services they own, "
        f"and its services are owned by others: {owners}."
    )


def role_names(actor: User) -> set[str]:
    """The actor's group names, read once per user object (as Django caches its permissions)."""
    if not hasattr(actor, "_rdm_role_names"):
        actor._rdm_role_names = set(actor.groups.values_list("name", flat=True))
    return actor._rdm_role_names


def role_problem(actor: User | None, roles: Iterable[str], attempt: str) -> str | None:
    """The policy names the roles whose members may approve; holding the permission alone is not enough."""
    roles = list(roles)
    if actor is None or not role_names(actor).isdisjoint(roles):
        return None
    return f"{_name(actor)} may not {attempt}: the policy lets only these roles approve: {', '.join(roles)}."


def sod_problems(actor: User | None, attempt: str, **relations: User | None) -> list[str]:
    """Segregation of duties: one refusal per relation (``manages=…``, ``requested=…``, ``built=…``)
    that ties ``actor`` to the record.
    """
    if actor is None:
        return []
    phrases = {
        "manages": "they manage it",
        "requested": "they requested it",
        "built": "they built its package",
        "recorded": "they recorded it",
        "created": "they created it",
        "submitted": "they submitted it",
    }
    return [
        f"{_name(actor)} may not {attempt}: {phrases[relation]} ({SOD})."
        for relation, user in relations.items()
        if user is not None and user.pk == actor.pk
    ]
