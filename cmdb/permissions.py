"""Who may change what in the CMDB (DESIGN.md "Who may do what").

Deployment Managers and Build/CI Engineers edit any CI; Service Owners hold the same permissions
but only for CIs of services they own. The role table (``rdm_site.roles``) grants the permissions;
this module adds the ownership rule, and explains every refusal.
"""

from django.contrib.auth.models import User

from cmdb.models import Service
from rdm_site.permissions import permission_problem

ADD_ENVIRONMENT = "cmdb.add_environment"
CHANGE_ENVIRONMENT = "cmdb.change_environment"
ADD_SERVICE = "cmdb.add_service"
CHANGE_SERVICE = "cmdb.change_service"
ADD_CI = "cmdb.add_configurationitem"
CHANGE_CI = "cmdb.change_configurationitem"
EDIT_ANY_CI = "cmdb.edit_any_configurationitem"
IMPORT_CIS = "cmdb.import_configurationitems"
ADD_RELATIONSHIP = "cmdb.add_relationship"
DELETE_RELATIONSHIP = "cmdb.delete_relationship"
ADD_BASELINE = "cmdb.add_baseline"


def ownership_problem(actor: User | None, service: Service | None, attempt: str) -> str | None:
    """Why ``actor`` may not ``attempt`` on a CI of ``service`` because they do not own the service, or None."""
    if actor is None or actor.has_perm(EDIT_ANY_CI) or (service is not None and service.owner_id == actor.pk):
        return None
    belongs = f"service {service.name!r} (owned by {service.owner.get_username()})" if service else "no service"
    return (
        f"{actor.get_username()} may not {attempt}: Service Owners may only edit CIs of services they own, "
        f"and this one belongs to {belongs}."
    )


def ci_edit_problem(actor: User | None, permission: str, service: Service | None, attempt: str) -> str | None:
    """Why ``actor`` may not ``attempt`` a change needing ``permission`` on a CI of ``service``, or None."""
    return permission_problem(actor, permission, attempt) or ownership_problem(actor, service, attempt)
