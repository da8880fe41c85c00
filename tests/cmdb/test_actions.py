"""The CI's rule table: what ``ci_available_actions`` offers is exactly what the services accept."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmdb import services
from cmdb.actions import CI_ACTIONS, UPDATE, ci_available_actions
from cmdb.choices import CiState, CiTransition
from rdm_site.exceptions import DomainError, IllegalTransition, NotAllowed
from rdm_site.roles import Role
from tests.cmdb.factories import ConfigurationItemFactory, ServiceFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# Who may act on a CI of "the service": every role that holds CMDB permissions, seen from both sides of
# the ownership rule, and one that holds none.
PEOPLE = ["deployment manager", "build engineer", "its service owner", "another service owner", "viewer"]


@pytest.fixture
def people():
    owner = UserFactory(username="owner", roles=[Role.SERVICE_OWNER])
    return {
        "deployment manager": UserFactory(username="dm", roles=[Role.DEPLOYMENT_MANAGER]),
        "build engineer": UserFactory(username="ci", roles=[Role.BUILD_ENGINEER]),
        "its service owner": owner,
        "another service owner": UserFactory(username="other", roles=[Role.SERVICE_OWNER]),
        "viewer": UserFactory(username="viewer", roles=[Role.VIEWER]),
        "service": ServiceFactory(owner=owner),
    }


def _take(action: str, ci, actor) -> None:
    if action == UPDATE:
        services.ci_update(ci=ci, actor=actor, data={"version": "next"})
    else:
        services.ci_transition(ci=ci, transition=action, actor=actor)


def _accepted(action: str, ci, actor) -> bool:
    """Whether the service took the action: anything but "not allowed" or "illegal from this state"."""
    try:
        _take(action, ci, actor)
    except (NotAllowed, IllegalTransition):
        return False
    except DomainError:
        return True
    return True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(state=st.sampled_from(CiState), person=st.sampled_from(PEOPLE), action=st.sampled_from(list(CI_ACTIONS)))
def test_an_action_is_offered_exactly_when_the_service_accepts_it(people, state, person, action):
    # given a CI of the service in some state, and someone in some role
    ci = ConfigurationItemFactory(state=state, service=people["service"])
    actor = people[person]
    # when we ask what they may do, and then try
    offered = action in ci_available_actions(ci, actor)
    # then the offer and the service agree
    assert offered == _accepted(action, ci, actor)


def test_the_offer_reads_as_the_role_table_and_the_lifecycle_say(people):
    live = ConfigurationItemFactory(state=CiState.LIVE, service=people["service"])
    assert ci_available_actions(live, people["its service owner"]) == [
        UPDATE,
        CiTransition.START_MAINTENANCE,
        CiTransition.RETIRE,
    ]
    assert ci_available_actions(live, people["another service owner"]) == []
    assert ci_available_actions(live, people["viewer"]) == []
    retired = ConfigurationItemFactory(state=CiState.RETIRED, service=people["service"])
    assert ci_available_actions(retired, people["deployment manager"]) == [UPDATE]
