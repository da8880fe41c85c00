"""DESIGN.md "Who may do what", as data: the one table every API permission matrix test is generated from.

Each row names an action and the roles that may take it. ``OWN`` marks a role that may only act for records of
services it owns (Service Owners); ``STANDARD`` a Build/CI Engineer acting only continuously, under standard
changes. A matrix test picks the rows its endpoints implement and asserts, for every role, the status that
follows: allowed (the service's answer: 2xx, or 409/422 when only the record's state or conditions stand in
the way) or refused with 403. Tokens: the same, narrowed by their scopes (``SCOPE`` per row).
"""

from rdm_site.roles import Role

RM, CA, EA, DM, CI, SO, V = (
    Role.RELEASE_MANAGER,
    Role.CHANGE_APPROVER,
    Role.EMERGENCY_APPROVER,
    Role.DEPLOYMENT_MANAGER,
    Role.BUILD_ENGINEER,
    Role.SERVICE_OWNER,
    Role.VIEWER,
)
ROLES = (RM, CA, EA, DM, CI, SO, V)
OWN = "own services only"
STANDARD = "continuous, standard changes only"

# action -> {role: None (unconditionally) or the qualification}
WHO_MAY: dict[str, dict[Role, str | None]] = {
    "read": dict.fromkeys(ROLES),
    "edit release plans, policies, windows, freezes": {RM: None},
    "submit or cancel a release": {RM: None},
    "approve or reject a release plan": {RM: None, SO: OWN},
    "register packages, units, artifacts, test results": {CI: None},
    "validate or reject a package": {RM: None, DM: None},
    "create a change record": {RM: None, DM: None, CI: STANDARD},
    "approve or reject a normal change": {CA: None, EA: None},
    "approve an emergency change, override a freeze": {EA: None},
    "run deployments": {DM: None, CI: STANDARD},
    "open, update, resolve incidents": {RM: None, DM: None, CI: None, SO: None},
    "edit CIs, relationships; import CIs": {DM: None, CI: None, SO: OWN},
    "start, extend, exit ELS": {DM: None, SO: OWN},
    "write and submit a PIR": {SO: OWN},
    "accept or return a PIR; write knowledge articles": {RM: None, SO: None},
}

# The API token scope each action needs (DESIGN.md: a token acts with its owner's roles, narrowed by scopes).
SCOPE: dict[str, str] = {
    "read": "read",
    "edit release plans, policies, windows, freezes": "releases",
    "submit or cancel a release": "releases",
    "approve or reject a release plan": "releases",
    "register packages, units, artifacts, test results": "packages",
    "validate or reject a package": "packages",
    "create a change record": "changes",
    "approve or reject a normal change": "changes",
    "approve an emergency change, override a freeze": "changes",
    "run deployments": "deployments",
    "open, update, resolve incidents": "incidents",
    "edit CIs, relationships; import CIs": "cmdb",
    "start, extend, exit ELS": "releases",
    "write and submit a PIR": "releases",
    "accept or return a PIR; write knowledge articles": "releases",
}


def may(action: str, role: Role) -> bool:
    """Whether ``role`` may take ``action`` at all (qualified rows count: the test sets up the qualifying case)."""
    return role in WHO_MAY[action]


def roles_allowed(action: str) -> list[Role]:
    return [role for role in ROLES if may(action, role)]
