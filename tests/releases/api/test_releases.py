"""``/api/v1/releases/``: the plan read, created and edited through the services, every transition a POST that
answers the fresh release with the caller's actions, the checklist, and the evidence pipelines post.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from rdm_site.models import AuditEvent
from releases import services
from releases.choices import ReleaseState
from releases.models import Release
from tests.releases.api.conftest import bearer, session
from tests.releases.conftest import add_unit, approve_plan, green_release, validated_package

pytestmark = pytest.mark.django_db


def test_the_list_shows_each_release_with_its_counts_and_current_package(world):
    # given a release with a validated package and an approved plan
    approve_plan(world)
    package = validated_package(world)
    # when a viewer lists the releases
    response = session(world.people.viewer).get("/api/v1/releases/")
    # then the release is there with its current package and what it counts
    assert response.status_code == 200
    [shown] = response.json()["results"]
    assert shown["id"] == world.release.pk
    assert shown["state"] == ReleaseState.APPROVED
    assert shown["current_package"] == package.pk
    assert (shown["packages_count"], shown["approvals_count"], shown["changes_count"]) == (1, 1, 0)
    assert "actions" not in shown


def test_the_list_filters_by_state_and_searches_by_name(world):
    client = session(world.people.viewer)
    assert client.get("/api/v1/releases/?state=draft&search=Shop").json()["count"] == 1
    assert client.get("/api/v1/releases/?state=approved").json()["count"] == 0
    assert client.get("/api/v1/releases/?state=nonsense").status_code == 400


def test_the_detail_lists_what_the_caller_may_do_now(world):
    url = f"/api/v1/releases/{world.release.pk}/"
    manager = session(world.people.rm).get(url)
    assert manager.status_code == 200
    assert "plan" in manager.json()["actions"]
    assert "update" in manager.json()["actions"]
    assert session(world.people.viewer).get(url).json()["actions"] == []


def test_a_release_manager_creates_a_release_and_the_service_audits_it(world):
    client = session(world.people.rm)
    start = timezone.now() + timedelta(days=20)
    response = client.post(
        "/api/v1/releases/",
        {
            "name": "Search",
            "version": "3.1",
            "policy": world.policy.pk,
            "services": [world.other_service.pk],
            "planned_start": start.isoformat(),
            "planned_end": (start + timedelta(hours=2)).isoformat(),
            "description": "Better ranking.",
            "els_staff": [world.people.so_other.username],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == ReleaseState.DRAFT
    assert body["release_manager"] == "rm"
    assert body["release_type"] == world.policy.release_type
    assert body["els_staff"] == ["so_other"]
    assert AuditEvent.objects.filter(action="release.create", object_id=str(body["id"])).exists()


def test_the_state_is_read_only(world):
    response = session(world.people.rm).patch(
        f"/api/v1/releases/{world.release.pk}/", {"state": "approved", "description": "New."}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["state"] == ReleaseState.DRAFT
    assert response.json()["description"] == "New."


def test_an_edit_through_put_may_repeat_what_cannot_change(world):
    client = session(world.people.rm)
    url = f"/api/v1/releases/{world.release.pk}/"
    body = client.get(url).json()
    body["version"] = "2.1"
    response = client.put(url, body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["version"] == "2.1"


def test_an_edit_of_what_never_changes_is_refused_with_400(world, people):
    other = services.policy_create(actor=people.rm, data={"name": "other minor", "release_type": "minor"})
    response = session(people.rm).patch(f"/api/v1/releases/{world.release.pk}/", {"policy": other.pk}, format="json")
    assert response.status_code == 400
    assert "policy" in response.json()["detail"]


def test_a_viewer_may_not_create_or_edit(world):
    client = session(world.people.viewer)
    assert client.patch(f"/api/v1/releases/{world.release.pk}/", {"name": "x"}, format="json").status_code == 403
    assert client.post("/api/v1/releases/", {}, format="json").status_code == 400  # bad input is told first
    response = client.post(
        "/api/v1/releases/",
        {"name": "x", "version": "1", "policy": world.policy.pk, "services": [world.service.pk]},
        format="json",
    )
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"


def test_releases_are_never_deleted(world):
    assert session(world.people.rm).delete(f"/api/v1/releases/{world.release.pk}/").status_code == 405


def test_the_lifecycle_through_transitions_answers_the_fresh_release(world):
    p, url = world.people, f"/api/v1/releases/{world.release.pk}"
    manager = session(p.rm)
    planned = manager.post(f"{url}/plan/", {}, format="json")
    assert planned.status_code == 200
    assert planned.json()["state"] == ReleaseState.PLANNED
    assert planned["ETag"]
    assert manager.post(f"{url}/submit/").json()["state"] == ReleaseState.SUBMITTED
    approved = session(p.so).post(f"{url}/approve/", {"reason": "Fine by me."}, format="json")
    assert approved.status_code == 200, approved.content
    assert approved.json()["state"] == ReleaseState.APPROVED
    assert approved.json()["approvals_count"] == 1


def test_an_illegal_transition_is_409_naming_the_state(world):
    response = session(world.people.rm).post(f"/api/v1/releases/{world.release.pk}/submit/")
    assert response.status_code == 409
    assert "draft" in response.json()["detail"]


def test_unmet_conditions_are_422_with_every_one_listed(world):
    Release.objects.filter(pk=world.release.pk).update(planned_start=None, planned_end=None)
    world.release.services.clear()
    response = session(world.people.rm).post(f"/api/v1/releases/{world.release.pk}/plan/")
    assert response.status_code == 422
    assert len(response.json()["conditions"]) == 2


def test_segregation_of_duties_is_403_with_its_reason(world):
    services.release_plan(release=world.release, actor=world.people.rm)
    services.release_submit(release=world.release, actor=world.people.rm)
    response = session(world.people.rm).post(f"/api/v1/releases/{world.release.pk}/approve/")
    assert response.status_code == 403
    assert "segregation of duties" in response.json()["detail"]


def test_a_rejection_needs_a_reason(world):
    services.release_plan(release=world.release, actor=world.people.rm)
    services.release_submit(release=world.release, actor=world.people.rm)
    url = f"/api/v1/releases/{world.release.pk}/reject/"
    assert session(world.people.so).post(url, {}, format="json").status_code == 400
    rejected = session(world.people.so).post(url, {"reason": "No rollback plan."}, format="json")
    assert rejected.json()["state"] == ReleaseState.REJECTED


def test_cancel_and_replan(world):
    url = f"/api/v1/releases/{world.release.pk}"
    client = session(world.people.rm)
    assert client.post(f"{url}/cancel/", {"reason": "Superseded by 2.1."}, format="json").json()["state"] == "cancelled"
    assert client.post(f"{url}/replan/", {}, format="json").status_code == 409


def test_a_stale_if_match_is_412_and_moves_nothing(world):
    client = session(world.people.rm)
    url = f"/api/v1/releases/{world.release.pk}/"
    etag = client.get(url)["ETag"]
    client.patch(url, {"description": "Edited meanwhile."}, format="json")
    response = client.post(f"{url}plan/", HTTP_IF_MATCH=etag)
    assert response.status_code == 412
    assert Release.objects.get(pk=world.release.pk).state == ReleaseState.DRAFT


def test_the_deployment_lifecycle_transitions(world):
    release, _ = green_release(world)
    url, client = f"/api/v1/releases/{release.pk}", session(world.people.dm)
    assert client.post(f"{url}/start-deploying/").json()["state"] == ReleaseState.DEPLOYING
    assert client.post(f"{url}/mark-deployed/").json()["state"] == ReleaseState.DEPLOYED
    assert client.post(f"{url}/start-els/").json()["state"] == ReleaseState.EARLY_LIFE_SUPPORT
    too_early = client.post(f"{url}/start-review/", {"reason": "Quiet day."}, format="json")
    assert too_early.status_code == 422  # the ELS minimum duration has not passed
    assert too_early.json()["conditions"]
    assert session(world.people.rm).post(f"{url}/close/", {}, format="json").status_code == 409


def test_failure_and_rollback_need_a_reason(world):
    release, _ = green_release(world)
    url, client = f"/api/v1/releases/{release.pk}", session(world.people.dm)
    client.post(f"{url}/start-deploying/")
    assert client.post(f"{url}/mark-failed/", {}, format="json").status_code == 400
    assert (
        client.post(f"{url}/mark-rolled-back/", {"reason": "Errors."}, format="json").json()["state"] == "rolled_back"
    )


def test_the_checklist_shows_every_gate_with_status_and_evidence(world):
    approve_plan(world)
    validated_package(world)
    client = session(world.people.viewer)
    response = client.get(f"/api/v1/releases/{world.release.pk}/checklist/")
    assert response.status_code == 200
    body = response.json()
    assert body["tier"] == "production"
    assert body["green"] is False
    assert len(body["gates"]) == 8
    plan = next(gate for gate in body["gates"] if gate["code"] == "plan_approved")
    assert plan["satisfied"] is True
    assert plan["evidence"][0]["who"] == "so"
    assert body["unmet"]
    staging = client.get(f"/api/v1/releases/{world.release.pk}/checklist/?tier=staging")
    assert staging.json()["tier"] == "staging"
    assert client.get(f"/api/v1/releases/{world.release.pk}/checklist/?tier=moon").status_code == 400


def test_a_green_release_has_a_green_checklist(world):
    release, _ = green_release(world)
    body = session(world.people.viewer).get(f"/api/v1/releases/{release.pk}/checklist/").json()
    assert body["green"] is True
    assert body["unmet"] == []


def test_a_pipeline_posts_backup_evidence_and_a_person_verifies_it(world):
    url = f"/api/v1/releases/{world.release.pk}"
    posted = bearer(world.people.ci, "releases").post(
        f"{url}/evidence/",
        {"gate": "backups_verified", "link": "https://backups.example/8812", "tool": "backup-bot"},
        format="json",
    )
    assert posted.status_code == 200, posted.content
    [evidence] = posted.json()["evidence"]
    assert evidence["recorded_by"] == "ci"
    assert evidence["recorded_by_tool"] == "backup-bot"
    assert evidence["verified_at"] is None
    own = bearer(world.people.ci, "releases").post(f"{url}/verify-evidence/", {"evidence": evidence["id"]})
    assert own.status_code == 403
    verified = session(world.people.dm).post(f"{url}/verify-evidence/", {"evidence": evidence["id"]}, format="json")
    assert verified.status_code == 200
    assert verified.json()["evidence"][0]["verified_by"] == "dm"


def test_evidence_of_another_release_is_refused(world, people):
    other = Release.objects.create(
        name="Other", version="1", release_type="minor", policy=world.policy, release_manager=people.rm
    )
    evidence = services.gate_evidence_record(release=other, actor=people.ci, link="https://b.example/1")
    response = session(people.dm).post(
        f"/api/v1/releases/{world.release.pk}/verify-evidence/", {"evidence": evidence.pk}, format="json"
    )
    assert response.status_code == 400


def test_evidence_that_is_computed_not_attested_is_refused(world):
    response = session(world.people.ci).post(
        f"/api/v1/releases/{world.release.pk}/evidence/", {"gate": "tests_passed", "note": "all green"}, format="json"
    )
    assert response.status_code == 400


def test_the_rollback_plan_is_written_then_rehearsed(world):
    url = f"/api/v1/releases/{world.release.pk}"
    rehearse_first = session(world.people.dm).post(f"{url}/rollback-rehearsal/", {"note": "done"}, format="json")
    assert rehearse_first.status_code == 422
    written = session(world.people.rm).post(f"{url}/rollback-plan/", {"steps": "1. Redeploy 1.9"}, format="json")
    assert written.json()["rollback_plan"]["steps"] == "1. Redeploy 1.9"
    rehearsed = session(world.people.dm).post(
        f"{url}/rollback-rehearsal/", {"link": "https://wiki.example/rehearsal"}, format="json"
    )
    assert rehearsed.status_code == 200
    assert rehearsed.json()["rollback_plan"]["rehearsed_by"] == "dm"


def test_units_are_added_with_their_cis_and_stakeholders_are_notified(world):
    url = f"/api/v1/releases/{world.release.pk}"
    added = bearer(world.people.ci, "packages").post(
        f"{url}/units/",
        {"name": "schema", "kind": "database_migration", "reversible": False, "configuration_items": [world.ci.pk]},
        format="json",
    )
    assert added.status_code == 200, added.content
    assert added.json()["units"] == [
        {
            "id": added.json()["units"][0]["id"],
            "name": "schema",
            "kind": "database_migration",
            "version": "",
            "reversible": False,
            "configuration_items": [world.ci.pk],
            "notes": "",
        }
    ]
    notified = session(world.people.rm).post(f"{url}/notify-stakeholders/", {"message": "Friday."}, format="json")
    assert notified.status_code == 200


def test_an_unknown_release_is_404_and_an_id_of_another_type_too(world):
    client = session(world.people.viewer)
    assert client.get("/api/v1/releases/999999/").status_code == 404
    assert client.get("/api/v1/releases/abc/").status_code == 404
    assert client.post("/api/v1/releases/abc/plan/").status_code in (403, 404)
    assert session(world.people.rm).post("/api/v1/releases/99999999999999999999/plan/").status_code == 404


def test_an_anonymous_caller_is_401(world):
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/releases/").status_code in (401, 403)


def test_add_unit_helper_and_detail_with_units(world):
    add_unit(world)
    body = session(world.people.viewer).get(f"/api/v1/releases/{world.release.pk}/").json()
    assert [unit["name"] for unit in body["units"]] == ["shop-app"]


def test_webhooks_show_a_release_as_its_detail_endpoint_does_without_the_callers_actions(world):
    from rdm_site.representations import representation_of

    approve_plan(world)
    validated_package(world)
    shown = representation_of("releases.release", str(world.release.pk))
    detail = session(world.people.rm).get(f"/api/v1/releases/{world.release.pk}/").json()
    assert shown == {**detail, "actions": []}


@pytest.mark.parametrize(
    ("collection", "rules"),
    [("releases", "RELEASE_ACTIONS"), ("packages", "PACKAGE_ACTIONS"), ("changes", "CHANGE_ACTIONS")],
)
def test_every_action_the_rule_tables_offer_has_its_endpoint(collection, rules):
    from django.urls import resolve

    from releases import actions

    # An edit is PATCH on the record; recording a test run is the test-results upload (or POST /test-runs/).
    elsewhere = {"update": "", "record_test_run": "test-results/"}
    for name in getattr(actions, rules):
        path = elsewhere.get(name, name.replace("_", "-") + "/")
        match = resolve(f"/api/v1/{collection}/1/{path}")
        assert "post" in match.func.actions or "patch" in match.func.actions, name
