"""Who may take which action on a configuration item, and from which states: the CI's one rule table
(``rdm_site.actions``). ``cmdb.services`` enforces it and ``ci_available_actions`` reports it, so the admin's
and the API's offers are what the services accept.

Deployment Managers and Build/CI Engineers act on any CI; Service Owners on CIs of the services they own.
"""

from django.contrib.auth.models import User

from cmdb import permissions as perms
from cmdb.choices import CiTransition
from cmdb.models import ConfigurationItem
from rdm_site.actions import ActionRule, actions_available

UPDATE = "update"


def _ci_editor(ci: ConfigurationItem, actor: User | None, attempt: str):
    return [perms.ci_edit_problem(actor, perms.CHANGE_CI, ci.service, attempt)]


CI_ACTIONS: dict[str, ActionRule] = {
    UPDATE: ActionRule(who=_ci_editor, attempt="change CI {record}"),
    **{
        transition.value: ActionRule(
            who=_ci_editor, attempt=f"{transition.label.lower()} CI {{record}}", transition=transition.value
        )
        for transition in CiTransition
    },
}


def ci_available_actions(ci: ConfigurationItem, actor: User | None) -> list[str]:
    """The actions ``actor`` may take on ``ci`` now: ``update`` and the lifecycle transitions."""
    return actions_available(CI_ACTIONS, ci, actor)
