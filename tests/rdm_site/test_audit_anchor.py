"""Audit anchors: the chain's head noted apart, so that removing the newest events is caught."""

import logging
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from rdm_site.audit import audit_anchor_record, audit_chain_verify, audit_record
from rdm_site.celery import app
from rdm_site.models import AuditAnchor, AuditEvent
from rdm_site.tasks import audit_anchor_record_task
from tests.harness.audit import audit_triggers_disabled
from tests.harness.processes import start_beat, subprocess_env, wait_until

EVENTS = AuditEvent._meta.db_table
ANCHORS = AuditAnchor._meta.db_table


def record_events(count: int) -> list[AuditEvent]:
    return [audit_record(actor=None, action="ci.edit", object_type="cmdb.ci", object_id=str(n)) for n in range(count)]


def delete_event(event: AuditEvent) -> None:
    with audit_triggers_disabled() as cursor:
        cursor.execute(f"DELETE FROM {EVENTS} WHERE id = %s", [event.id])


def gone_message(anchor: AuditAnchor) -> str:
    return (
        f"the newest events were removed: anchor #{anchor.pk} at {anchor.recorded_at.isoformat(timespec='seconds')} "
        f"names event #{anchor.event_id}, which is gone"
    )


# --- recording anchors -------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_task_anchors_the_head_only_when_it_moved(caplog):
    # given an empty chain, nothing is anchored
    assert audit_anchor_record_task() is None
    # given three events
    events = record_events(3)
    # when the task runs, then it notes the head and logs the anchor with its id and hash
    with caplog.at_level(logging.INFO, logger="rdm_site.audit"):
        anchor_id = audit_anchor_record_task()
    anchor = AuditAnchor.objects.get(pk=anchor_id)
    assert (anchor.event_id, anchor.head_hash, anchor.event_count) == (events[-1].id, events[-1].hash, 3)
    assert f"audit anchor #{anchor.pk}: event #{events[-1].id}, head {events[-1].hash}, 3 event(s)" in caplog.text
    # when it runs again with the head unmoved, then nothing new is recorded
    assert audit_anchor_record_task() is None
    assert AuditAnchor.objects.count() == 1
    # when the head moves, then the next run anchors the new head
    (later,) = record_events(1)
    newer = AuditAnchor.objects.get(pk=audit_anchor_record_task())
    assert (newer.event_id, newer.event_count) == (later.id, 4)
    assert list(AuditAnchor.objects.values_list("pk", flat=True)) == [newer.pk, anchor.pk]


def test_beat_runs_the_anchor_task_every_rdm_audit_anchor_seconds():
    entry = app.conf.beat_schedule["audit-anchor-record"]
    assert entry["task"] == audit_anchor_record_task.name
    assert entry["schedule"] == settings.RDM_AUDIT_ANCHOR_SECONDS == 300.0


@pytest.mark.django_db(transaction=True)
def test_beat_and_a_worker_anchor_each_new_head_once(worker_factory, process_log_dir):
    # given committed events, a worker and Celery beat anchoring every second
    events = record_events(2)
    worker_factory()
    beat = start_beat(process_log_dir, RDM_AUDIT_ANCHOR_SECONDS="1")
    try:
        # when beat has run the task, then the head is anchored
        wait_until(lambda: AuditAnchor.objects.exists(), timeout=30, what=f"an anchor\n{beat.log()}")
        assert AuditAnchor.objects.get().event_id == events[-1].id
        # when the head moves, then it is anchored too, once however often beat runs the task
        (later,) = record_events(1)
        wait_until(lambda: AuditAnchor.objects.filter(event_id=later.id).exists(), timeout=30, what="the new head")
        sends = beat.log().count("audit_anchor_record_task")
        wait_until(lambda: beat.log().count("audit_anchor_record_task") >= sends + 2, timeout=30, what="two runs")
        assert list(AuditAnchor.objects.values_list("event_id", flat=True)) == [later.id, events[-1].id]
    finally:
        beat.stop()


# --- verifying against the last anchor ---------------------------------------------------------


@pytest.mark.django_db
def test_an_intact_chain_with_anchors_passes_and_the_command_names_the_anchor(capsys):
    # given an anchored chain that grew after its anchor
    record_events(2)
    anchor = audit_anchor_record()
    events = record_events(2)
    # when it is verified, then it is intact and the command prints the anchor it checked against
    report = audit_chain_verify()
    assert (report.ok, report.events, report.anchor) == (True, 4, anchor)
    call_command("audit_verify")
    out = capsys.readouterr().out
    when = anchor.recorded_at.isoformat(timespec="seconds")
    assert f"anchor: #{anchor.pk} at {when}: event #{anchor.event_id}, 2 event(s), head {anchor.head_hash}" in out
    assert f"OK: 4 audit event(s), chain intact, head {events[-1].hash}" in out


@pytest.mark.django_db
def test_without_an_anchor_the_command_says_so(capsys):
    record_events(1)
    call_command("audit_verify")
    assert "anchor: none recorded yet" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_a_deleted_newest_event_fails_verification_with_status_1():
    # given an anchored chain
    events = record_events(3)
    anchor = audit_anchor_record()
    # when its newest event is deleted behind the triggers' back
    delete_event(events[-1])
    # then the chain alone still looks intact, but the anchor shows the loss
    report = audit_chain_verify()
    assert (report.ok, report.events, report.problem_event_id) == (False, 2, events[-1].id)
    assert report.problem == gone_message(anchor)
    # and an operator running the command gets status 1 and the problem
    run = subprocess.run(
        [sys.executable, "manage.py", "audit_verify"], env=subprocess_env(), capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1, run.stdout
    assert gone_message(anchor) in run.stderr
    assert f"anchor: #{anchor.pk}" in run.stdout


@pytest.mark.django_db
def test_the_loss_stays_visible_after_rdm_goes_on_recording_and_is_never_anchored_over(caplog):
    # given an anchored chain whose two newest events were deleted
    events = record_events(4)
    anchor = audit_anchor_record()
    delete_event(events[-1])
    delete_event(events[-2])
    # when RDM records another event and the anchor task runs
    record_events(1)
    with caplog.at_level(logging.ERROR, logger="rdm_site.audit"):
        refused = audit_anchor_record()
    # then no anchor vouches for the shortened chain, the refusal is logged, and verification names the loss
    assert refused is None
    assert AuditAnchor.objects.get() == anchor
    assert f"audit anchor not recorded: {gone_message(anchor)}" in caplog.text
    assert audit_chain_verify().problem == gone_message(anchor)


@pytest.mark.django_db
def test_a_rewritten_anchored_event_with_a_recomputed_hash_is_named():
    # given an anchored chain
    events = record_events(2)
    anchor = audit_anchor_record()
    # when its newest event is rewritten together with a hash of its own
    event = AuditEvent.objects.get(pk=events[-1].pk)
    event.reason = "nothing to see"
    with audit_triggers_disabled() as cursor:
        rewrite = f"UPDATE {EVENTS} SET reason = %s, hash = %s WHERE id = %s"
        cursor.execute(rewrite, [event.reason, event.compute_hash(), event.id])
    # then the chain alone is intact, but the anchor names the event
    report = audit_chain_verify()
    assert report.problem.startswith(f"event #{event.id} is not the one anchor #{anchor.pk} at ")
    assert report.problem.endswith("names: its hash differs")


@pytest.mark.django_db
def test_an_anchor_counting_other_events_than_the_chain_holds_is_reported():
    # given a chain and an anchor that counted one event more up to its head (as if one before it went)
    events = record_events(2)
    with audit_triggers_disabled() as cursor:
        cursor.execute(
            f"INSERT INTO {ANCHORS} (event_id, head_hash, event_count, recorded_at) VALUES (%s, %s, 3, now())",
            [events[-1].id, events[-1].hash],
        )
    # then verification says events were removed
    report = audit_chain_verify()
    assert not report.ok
    assert "counted 3 event(s) up to" in report.problem
    assert report.problem.endswith("the chain now holds 2")


# --- the anchor table refuses edits ------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    [f"UPDATE {ANCHORS} SET event_count = 0", f"DELETE FROM {ANCHORS}", f"TRUNCATE {ANCHORS}"],
    ids=["update", "delete", "truncate"],
)
def test_the_database_refuses_to_change_or_remove_anchors(statement):
    # given an anchor
    record_events(1)
    anchor = audit_anchor_record()
    # when it is changed or removed, then the database refuses and says why
    refused = pytest.raises(DatabaseError, match="audit anchors are append-only")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert AuditAnchor.objects.values_list("pk", "event_count").get() == (anchor.pk, 1)


@pytest.mark.django_db
def test_admin_shows_anchors_but_nobody_may_add_change_or_delete_them(admin_client):
    record_events(1)
    anchor = audit_anchor_record()
    base = "/admin/rdm_site/auditanchor/"
    listing = admin_client.get(base)
    assert listing.status_code == 200
    assert anchor.head_hash.encode() in listing.content
    assert b'name="_save"' not in admin_client.get(f"{base}{anchor.pk}/change/").content
    assert admin_client.get(f"{base}add/").status_code == 403
    assert admin_client.post(f"{base}{anchor.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditAnchor.objects.filter(pk=anchor.pk).exists()
