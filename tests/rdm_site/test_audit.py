"""The audit trail: recording, the hash chain and its verification, the append-only table, and who reads it."""

import datetime
import subprocess
import sys
import threading

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from rdm_site.audit import audit_append, audit_chain_verify, audit_event_prepare, audit_record
from rdm_site.middleware import current_request_id
from rdm_site.models import GENESIS_HASH, AuditEvent
from rdm_site.roles import Role
from rdm_site.selectors import audit_events_for, audit_events_in_id_order
from tests.factories import UserFactory
from tests.harness.audit import audit_triggers_disabled
from tests.harness.processes import subprocess_env

TABLE = AuditEvent._meta.db_table


def record_events(count: int, action: str = "ci.edit") -> list[AuditEvent]:
    return [audit_record(actor=None, action=action, object_type="cmdb.ci", object_id=str(n)) for n in range(count)]


# --- recording ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_record_names_the_actor_the_object_and_the_request():
    # given a user acting on a record during a request
    alice = UserFactory(username="alice")
    token = current_request_id.set("req-42")
    try:
        # when the action is recorded
        event = audit_record(
            actor=alice, action="change.approve", target=alice, from_state="assessed", to_state="approved", reason="ok"
        )
    finally:
        current_request_id.reset(token)
    # then the row says who, what, on which object, and under which request
    event.refresh_from_db()
    assert (event.actor_kind, event.actor_id, event.actor_label) == ("user", alice.pk, "alice")
    assert (event.object_type, event.object_id, event.object_repr) == ("auth.user", str(alice.pk), "alice")
    assert (event.from_state, event.to_state, event.reason, event.request_id) == (
        "assessed",
        "approved",
        "ok",
        "req-42",
    )
    assert list(audit_events_for(alice)) == [event]


@pytest.mark.django_db
def test_system_events_and_edits_with_any_json_value_keep_their_hash():
    # given an edit whose values jsonb normalises (a date, a float written with an exponent, a tuple)
    changes = {"due": [datetime.date(2025, 1, 1), None], "weight": [1e20, 2.5], "tags": [(), ("a",)]}
    # when RDM itself records it
    event = audit_record(actor=None, action="ci.edit", object_type="cmdb.ci", object_id="7", changes=changes)
    # then the stored row still matches its hash
    event.refresh_from_db()
    assert (event.actor_kind, event.actor_label, event.actor_id) == ("system", "system", None)
    assert event.changes["due"] == ["2025-01-01", None]
    assert event.compute_hash() == event.hash
    assert audit_chain_verify().ok


@pytest.mark.django_db
def test_record_refuses_ambiguous_or_unnamed_objects_and_unknown_actors():
    user = UserFactory()
    with pytest.raises(ValueError, match="either target or object_type"):
        audit_record(actor=None, action="x", target=user, object_type="auth.user")
    with pytest.raises(ValueError, match="unsaved"):
        audit_record(actor=None, action="x", target=Group(name="new"))
    with pytest.raises(TypeError, match=r"an audit actor is a user .*or None, not str"):
        audit_record(actor="alice", action="x")


def test_the_hash_covers_every_content_field():
    content = {field.name for field in AuditEvent._meta.concrete_fields} - {"id", "hash"}
    assert set(AuditEvent.HASHED_FIELDS) == content


# --- the chain ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_chain_links_each_event_to_the_one_before_and_verifies():
    # given several events
    events = record_events(5)
    # then each names its predecessor's hash, and the walk (in small chunks) finds them intact
    assert [event.previous_hash for event in events] == [GENESIS_HASH] + [event.hash for event in events[:-1]]
    assert list(audit_events_in_id_order(chunk=2)) == events
    report = audit_chain_verify()
    assert (report.ok, report.events, report.head_hash, report.problem) == (True, 5, events[-1].hash, "")


@pytest.mark.django_db
def test_a_filtered_walk_starts_at_the_filters_first_event_and_keeps_the_filter():
    events = record_events(7)
    later = AuditEvent.objects.filter(pk__in=[events[3].pk, events[4].pk, events[6].pk])
    with CaptureQueriesContext(connection) as queries:
        walked = list(audit_events_in_id_order(later, chunk=2))
    assert walked == [events[3], events[4], events[6]]
    assert f'"id" > {events[3].pk - 1}' in queries.captured_queries[1]["sql"]  # the first chunk starts there
    assert list(audit_events_in_id_order(AuditEvent.objects.filter(pk__in=[]))) == []
    assert list(audit_events_in_id_order(AuditEvent.objects.filter(action="nothing.such"))) == []


@pytest.mark.django_db
def test_events_appended_together_chain_in_their_order_each_as_jsonb_stores_it():
    # given one event on the chain, then three prepared together, one with values jsonb normalises
    first = audit_record(actor=None, action="ci.update", object_type="cmdb.ci", object_id="0")
    prepared = [
        audit_event_prepare(actor=None, action="ci.update", object_type="cmdb.ci", object_id=str(n), changes=changes)
        for n, changes in enumerate([{"version": ["1", "2"]}, {"weight": [1e20, 2.5]}, {}], start=1)
    ]
    # when they are appended in one go
    events = audit_append(prepared)
    # then they follow the first in their order, each linked to the one before, stored as hashed
    assert [event.object_id for event in audit_events_in_id_order()] == ["0", "1", "2", "3"]
    assert [event.previous_hash for event in events] == [first.hash, events[0].hash, events[1].hash]
    stored = AuditEvent.objects.get(pk=events[1].pk)
    assert stored.changes == {"weight": [1e20, 2.5]}
    assert stored.compute_hash() == stored.hash
    assert audit_chain_verify().ok
    assert audit_append([]) == []


@pytest.mark.django_db
def test_an_altered_event_is_named():
    # given an intact chain
    events = record_events(4)
    # when someone with the table owner's rights rewrites the third event's reason
    with audit_triggers_disabled() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET reason = 'nothing to see' WHERE id = %s", [events[2].id])
    # then verification names that event
    report = audit_chain_verify()
    assert not report.ok
    assert report.problem == f"event #{events[2].id} was altered"
    assert (report.problem_event_id, report.events) == (events[2].id, 2)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("deleted", "expected"), [(2, "event(s) missing between #{1} and #{3}"), (0, "event(s) missing before #{1}")]
)
def test_a_deleted_event_is_reported_between_its_neighbours(deleted, expected):
    # given an intact chain
    events = record_events(4)
    ids = [event.id for event in events]
    # when one event is deleted behind the triggers' back
    with audit_triggers_disabled() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [ids[deleted]])
    # then verification says where the gap is
    report = audit_chain_verify()
    assert report.problem == expected.format(*ids)
    # and a hole in the ids, if any, is reported alongside (only a hint: rolled-back transactions leave holes too)
    assert report.id_gaps == (((ids[1], ids[3]),) if deleted == 2 else ())


@pytest.mark.django_db
def test_removing_the_newest_event_leaves_only_hints():
    # given an intact chain whose head an operator wrote down
    events = record_events(3)
    head = audit_chain_verify().head_hash
    # when the newest event is deleted, and RDM goes on recording
    with audit_triggers_disabled() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [events[-1].id])
    (later,) = record_events(1)
    # then the chain itself is intact: only the hole in the ids and the head written down earlier hint at the loss
    report = audit_chain_verify()
    assert (report.ok, report.events) == (True, 3)
    assert report.id_gaps == ((events[1].id, later.id),)
    assert head != events[1].hash


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_never_fork_the_chain():
    # given two threads, each with its own database connection, released at the same moment
    start = threading.Barrier(2)
    failures = []

    def append_twenty(name):
        try:
            start.wait()
            for n in range(20):
                audit_record(actor=None, action="deployment.step", object_type="test.thread", object_id=f"{name}-{n}")
        except Exception as error:
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=append_twenty, args=(name,)) for name in ("a", "b")]
    # when both append twenty events at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then all forty form one intact chain
    assert failures == []
    report = audit_chain_verify()
    assert (report.ok, report.events) == (True, 40), report.problem


# --- the table refuses edits -------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda event: AuditEvent.objects.filter(pk=event.pk).update(reason="x"), id="orm-update"),
        pytest.param(lambda event: event.save(), id="orm-save"),
        pytest.param(lambda event: event.delete(), id="orm-delete"),
        pytest.param(lambda event: _sql(f"UPDATE {TABLE} SET reason = 'x'"), id="sql-update"),
        pytest.param(lambda event: _sql(f"DELETE FROM {TABLE}"), id="sql-delete"),
        pytest.param(lambda event: _sql(f"TRUNCATE {TABLE} CASCADE"), id="sql-truncate"),
    ],
)
def test_the_database_refuses_to_change_or_remove_events(tamper):
    # given a recorded event
    (event,) = record_events(1)
    # when it is changed or removed, then the database refuses and says why
    with pytest.raises(DatabaseError, match="audit events are append-only"), transaction.atomic():
        tamper(event)
    assert audit_chain_verify().events == 1


def _sql(statement):
    with connection.cursor() as cursor:
        cursor.execute(statement)


# --- the command -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_verify_command_prints_ok_or_fails_naming_the_problem(capsys):
    # given an intact chain, the command says OK with the count
    events = record_events(3)
    call_command("audit_verify")
    assert f"OK: 3 audit event(s), chain intact, head {events[-1].hash}" in capsys.readouterr().out
    # when an event is altered, then the command fails naming it
    with audit_triggers_disabled() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET actor_label = 'mallory' WHERE id = %s", [events[1].id])
    with pytest.raises(CommandError, match=f"event #{events[1].id} was altered"):
        call_command("audit_verify")


@pytest.mark.django_db(transaction=True)
def test_verify_command_exits_with_status_1_on_a_broken_chain():
    # given a committed chain with a missing event
    events = record_events(3)
    with audit_triggers_disabled() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [events[1].id])
    # when an operator runs the command, then it exits 1 with the problem on stderr
    run = subprocess.run(
        [sys.executable, "manage.py", "audit_verify"], env=subprocess_env(), capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1
    assert f"event(s) missing between #{events[0].id} and #{events[2].id}" in run.stderr


# --- reading: list, export, admin --------------------------------------------------------------


@pytest.mark.django_db
def test_every_role_may_read_the_audit_trail():
    for role in Role:
        assert Group.objects.get(name=role.value).permissions.filter(codename="view_auditevent").exists()


@pytest.mark.django_db
def test_export_asks_anonymous_visitors_to_sign_in_and_refuses_users_without_a_role(client):
    assert client.get("/audit/export.csv")["Location"].startswith("/accounts/login/?next=/audit/export.csv")
    client.force_login(UserFactory())
    assert client.get("/audit/export.csv").status_code == 403
    assert client.get("/audit/").status_code == 403


@pytest.mark.django_db
def test_viewer_exports_the_filtered_trail_as_csv(client):
    # given events on two object types, one with a reason a spreadsheet would run
    record_events(2)
    event = audit_record(
        actor=None, action="change.approve", object_type="releases.change", object_id="1", reason="=CMD()"
    )
    client.force_login(UserFactory(roles=[Role.VIEWER]))
    # when a viewer exports one object type for the day it happened
    today = event.occurred_at.date().isoformat()
    response = client.get(
        "/audit/export.csv", {"object_type": "releases.change", "occurred_after": today, "occurred_before": today}
    )
    # then the CSV holds the header and that event only, with the formula defused
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("id,occurred_at,actor_id,actor_label,actor_kind,action,")
    assert len(lines) == 2
    assert ",change.approve,releases.change,1," in lines[1]
    assert ",'=CMD()," in lines[1]


@pytest.mark.django_db
def test_export_refuses_an_invalid_filter(client):
    client.force_login(UserFactory(roles=[Role.VIEWER]))
    response = client.get("/audit/export.csv", {"occurred_after": "yesterday"})
    assert response.status_code == 400
    assert "occurred" in response.json()["errors"]


@pytest.mark.django_db
def test_viewer_lists_the_trail_filtered_by_action_from_the_navigation(client):
    record_events(2, action="ci.edit")
    record_events(1, action="release.submit")
    client.force_login(UserFactory(roles=[Role.VIEWER]))
    response = client.get("/audit/", {"action": "release.submit"})
    assert response.status_code == 200
    assert b'href="/audit/">Audit trail</a>' in response.content
    assert [event.action for event in response.context["object_list"]] == ["release.submit"]


@pytest.mark.django_db
def test_admin_shows_events_but_nobody_may_add_change_or_delete_them(admin_client):
    (event,) = record_events(1)
    base = "/admin/rdm_site/auditevent/"
    assert admin_client.get(base).status_code == 200
    change_page = admin_client.get(f"{base}{event.pk}/change/")
    assert change_page.status_code == 200
    assert b'name="_save"' not in change_page.content
    assert admin_client.get(f"{base}add/").status_code == 403
    assert admin_client.post(f"{base}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()
