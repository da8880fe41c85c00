"""apply_changes: what every update service sets and records, {field: [old, new]}."""

import pytest

from rdm_site.changes import apply_changes
from rdm_site.exceptions import InvalidInput
from tests.cmdb.factories import ServiceFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_fields_that_may_not_be_edited_are_refused_all_named():
    service = ServiceFactory(name="Shop")
    with pytest.raises(InvalidInput) as refusal:
        apply_changes(service, {"name": "Shop 2", "colour": "red", "id": 9}, ("name", "description"))
    assert "cannot be edited: colour, id; editable: name, description" in str(refusal.value)
    assert refusal.value.errors == ["colour: cannot be edited", "id: cannot be edited"]
    assert service.name == "Shop"


def test_only_what_differs_is_set_and_recorded_related_objects_by_name():
    oscar, sophie = UserFactory(username="oscar"), UserFactory(username="sophie")
    service = ServiceFactory(owner=oscar, description="old")
    changes = apply_changes(service, {"owner": sophie, "description": "old"}, ("owner", "description"))
    assert changes == {"owner": ["oscar", "sophie"]}
    assert service.owner == sophie


def test_many_to_many_members_are_compared_set_and_recorded():
    # given a service with one stakeholder
    ada, bob, cy = (UserFactory(username=name) for name in ("ada", "bob", "cy"))
    service = ServiceFactory()
    service.stakeholders.set([ada])
    # when its stakeholders become bob and cy / then the change lists both sides by name, and it is saved
    changes = apply_changes(service, {"stakeholders": [cy, bob]}, ("stakeholders",))
    assert changes == {"stakeholders": [["ada"], ["bob", "cy"]]}
    assert set(service.stakeholders.all()) == {bob, cy}
    # when the same members are given in another order / then nothing changed
    assert apply_changes(service, {"stakeholders": [bob, cy]}, ("stakeholders",)) == {}
