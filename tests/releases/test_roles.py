"""The role table's release rows, against DESIGN.md "Who may do what": which roles hold each governing permission."""

import pytest

from rdm_site.roles import ROLE_PERMISSIONS, Role

RM, CA, EA, DM, CI, SO, V = (
    Role.RELEASE_MANAGER,
    Role.CHANGE_APPROVER,
    Role.EMERGENCY_APPROVER,
    Role.DEPLOYMENT_MANAGER,
    Role.BUILD_ENGINEER,
    Role.SERVICE_OWNER,
    Role.VIEWER,
)

EXPECTED = {
    "releases.add_release": {RM},
    "releases.change_releasepolicy": {RM},
    "releases.change_releasewindow": {RM},
    "releases.change_freezeperiod": {RM},
    "releases.submit_release": {RM},
    "releases.cancel_release": {RM},
    "releases.approve_release": {RM, SO},
    "releases.approve_any_release": {RM},
    "releases.register_package": {CI},
    "releases.validate_package": {RM, DM},
    "releases.add_changerecord": {RM, DM},
    "releases.create_standard_change": {RM, DM, CI},
    "releases.assess_change": {CA, EA},
    "releases.approve_change": {CA, EA},
    "releases.approve_emergency_change": {EA},
    "releases.override_freeze": {EA},
    "releases.implement_change": {DM},
    "releases.implement_standard_change": {CI},
    "releases.deploy_release": {DM, CI},
    "releases.manage_els": {DM, SO},
    "releases.manage_any_els": {DM},
    "releases.close_release": {RM, SO},
    "releases.add_knowledgearticle": {RM, SO},
}


@pytest.mark.parametrize(("permission", "roles"), EXPECTED.items())
def test_each_governing_permission_is_held_by_exactly_the_roles_design_names(permission, roles):
    assert {role for role, names in ROLE_PERMISSIONS.items() if permission in names} == roles


def test_viewers_change_nothing():
    assert ROLE_PERMISSIONS[V] == frozenset()
