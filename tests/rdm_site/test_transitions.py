"""transition_record: one audit event and one outbox row per transition or edit, committed or rolled back together."""

import pytest
from django.db import transaction

from rdm_site.models import AuditEvent, OutboxEvent
from rdm_site.transitions import transition_record
from tests.cmdb.factories import ConfigurationItemFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_transition_is_one_audit_event_and_one_outbox_row_naming_it():
    # given a CI and the person moving it
    ci, dan = ConfigurationItemFactory(), UserFactory(username="dan")
    # when its transition is recorded
    event = transition_record(
        actor=dan, target=ci, action="ci.retire", from_state="live", to_state="retired", reason="decommissioned"
    )
    # then the trail holds it, and the outbox holds it for the outside, pointing at the same object and moment
    assert list(AuditEvent.objects.values_list("action", "actor_label", "from_state", "to_state", "reason")) == [
        ("ci.retire", "dan", "live", "retired", "decommissioned")
    ]
    [outbox] = OutboxEvent.objects.all()
    assert outbox.audit_event == event
    assert (outbox.event_type, outbox.object_type, outbox.object_id) == (
        "ci.retire",
        "cmdb.configurationitem",
        str(ci.pk),
    )
    assert (outbox.occurred_at, outbox.dispatched_at) == (event.occurred_at, None)


def test_the_event_and_its_outbox_row_roll_back_with_the_transition():
    ci = ConfigurationItemFactory()

    @transaction.atomic
    def update_that_fails_after_recording():
        transition_record(actor=None, target=ci, action="ci.update", changes={"version": ["1", "2"]})
        raise RuntimeError("the save failed")

    # when the transaction recording an update fails after the record
    with pytest.raises(RuntimeError):
        update_that_fails_after_recording()
    # then neither the event nor its outbox row exists
    assert not AuditEvent.objects.exists()
    assert not OutboxEvent.objects.exists()


@pytest.mark.parametrize("action", ["ci.edit", "retire", "ci.", ".retire", ""])
def test_an_action_must_read_entity_dot_verb_and_edits_are_updates(action):
    with pytest.raises(ValueError, match=r"'<entity>\.<verb>' \(edits are '\.update'\)"):
        transition_record(actor=None, target=ConfigurationItemFactory(), action=action)
    assert not AuditEvent.objects.exists()
