"""``/api/v1/changes/``, ``/change-templates/``, ``/approvals/`` and ``/freeze-overrides/``: change records raised,
edited and decided through their services, standard changes from a template, conflicts, freeze overrides.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from releases import services
from releases.choices import ChangeState, ChangeType
from releases.models import ChangeRecord, ChangeTemplate
from tests.releases.api.conftest import bearer, session
from tests.releases.factories import ChangeTemplateFactory, FreezeFactory

pytestmark = pytest.mark.django_db


def schedule(days: int = 3, hours: int = 2) -> dict:
    start = timezone.now() + timedelta(days=days)
    return {"planned_start": start.isoformat(), "planned_end": (start + timedelta(hours=hours)).isoformat()}


def raise_change(world, change_type=ChangeType.NORMAL, **fields) -> ChangeRecord:
    start = timezone.now() + timedelta(days=3)
    return services.change_create(
        actor=world.people.rm,
        change_type=change_type,
        title="Deploy Shop",
        planned_start=start,
        planned_end=start + timedelta(hours=2),
        services=[world.service],
        **fields,
    )


@pytest.fixture
def template(world):
    return ChangeTemplateFactory(name="Shop rollout", services=[world.service], approved_by=world.people.ca)


def test_a_deployment_manager_raises_a_normal_change(world):
    response = session(world.people.dm).post(
        "/api/v1/changes/",
        {"change_type": "normal", "title": "Resize the shop DB", "services": [world.service.pk], **schedule()},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["number"].startswith("CHG")
    assert body["state"] == ChangeState.DRAFT
    assert body["requested_by"] == "dm"
    assert "submit" in body["actions"]


def test_a_build_engineer_may_raise_standard_changes_only(world, template):
    pipeline = bearer(world.people.ci, "changes")
    normal = {"change_type": "normal", "title": "x", "services": [world.service.pk], **schedule()}
    assert pipeline.post("/api/v1/changes/", normal, format="json").status_code == 403
    standard = {"change_type": "standard", "template": template.pk, **schedule()}
    made = pipeline.post("/api/v1/changes/", standard, format="json")
    assert made.status_code == 201, made.content
    assert made.json()["title"] == "Shop rollout"


def test_a_standard_change_from_a_template_is_approved_on_submit(world, template):
    pipeline = bearer(world.people.ci, "changes")
    made = pipeline.post(
        f"/api/v1/change-templates/{template.pk}/create-change/", {**schedule(), "release": world.release.pk}
    )
    assert made.status_code == 201, made.content
    assert made.json()["change_type"] == ChangeType.STANDARD
    assert made.json()["services"] == [world.service.pk]
    submitted = pipeline.post(f"/api/v1/changes/{made.json()['id']}/submit/")
    assert submitted.status_code == 200, submitted.content
    assert submitted.json()["state"] == ChangeState.APPROVED


def test_a_template_that_is_not_pre_approved_raises_nothing(world):
    draft = ChangeTemplateFactory(services=[world.service], approved_by=None, approved_at=None)
    response = session(world.people.dm).post(f"/api/v1/change-templates/{draft.pk}/create-change/", schedule())
    assert response.status_code == 400
    assert not ChangeRecord.objects.exists()


def test_a_normal_change_is_submitted_assessed_and_approved_by_the_cab(world):
    change = raise_change(world)
    url = f"/api/v1/changes/{change.pk}"
    assert session(world.people.rm).post(f"{url}/submit/").json()["state"] == ChangeState.SUBMITTED
    assessed = session(world.people.ca).post(f"{url}/assess/", {"assessment": "Low.", "risk": "low"}, format="json")
    assert assessed.json()["state"] == ChangeState.ASSESSED
    assert assessed.json()["risk"] == "low"
    assert session(world.people.rm).post(f"{url}/approve/").status_code == 403
    approved = session(world.people.ca).post(f"{url}/approve/", {"reason": "Go."}, format="json")
    assert approved.json()["state"] == ChangeState.APPROVED
    [decision] = session(world.people.viewer).get(f"/api/v1/approvals/?change={change.pk}").json()["results"]
    assert (decision["approver"], decision["decision"], decision["change"]) == ("ca", "approved", change.number)


def test_a_rejected_change_needs_a_reason(world):
    change = raise_change(world)
    services.change_submit(change=change, actor=world.people.rm)
    services.change_assess(change=change, actor=world.people.ca)
    url = f"/api/v1/changes/{change.pk}/reject/"
    assert session(world.people.ca).post(url, {}, format="json").status_code == 400
    assert session(world.people.ca).post(url, {"reason": "Risky."}, format="json").json()["state"] == "rejected"


def test_the_implementation_transitions_and_the_review(world):
    change = raise_change(world, change_type=ChangeType.EMERGENCY, release=None)
    services.change_submit(change=change, actor=world.people.rm)
    services.change_assess(change=change, actor=world.people.ea)
    services.change_approve(change=change, actor=world.people.ea)
    url, dm = f"/api/v1/changes/{change.pk}", session(world.people.dm)
    assert dm.post(f"{url}/schedule/").json()["state"] == ChangeState.SCHEDULED
    ChangeRecord.objects.filter(pk=change.pk).update(planned_start=timezone.now() - timedelta(minutes=1))
    assert dm.post(f"{url}/start/").json()["state"] == ChangeState.IMPLEMENTING
    assert dm.post(f"{url}/mark-backed-out/", {"reason": "Errors."}, format="json").json()["state"] == "backed_out"
    assert session(world.people.rm).post(f"{url}/review/", {}, format="json").status_code in (400, 403)


def test_mark_implemented_and_failed_follow_the_outcome(world):
    for outcome, path in (("implemented", "mark-implemented"), ("failed", "mark-failed")):
        change = raise_change(world)
        services.change_submit(change=change, actor=world.people.rm)
        services.change_assess(change=change, actor=world.people.ca)
        services.change_approve(change=change, actor=world.people.ca)
        services.change_schedule(change=change, actor=world.people.dm)
        ChangeRecord.objects.filter(pk=change.pk).update(planned_start=timezone.now() - timedelta(minutes=1))
        services.change_start(change=change, actor=world.people.dm)
        response = session(world.people.dm).post(f"/api/v1/changes/{change.pk}/{path}/", {}, format="json")
        assert response.json()["state"] == outcome


def test_an_edit_of_an_approved_change_reopens_its_approval(world):
    change = raise_change(world)
    services.change_submit(change=change, actor=world.people.rm)
    services.change_assess(change=change, actor=world.people.ca)
    services.change_approve(change=change, actor=world.people.ca)
    response = session(world.people.rm).patch(f"/api/v1/changes/{change.pk}/", {"impact": "Checkout down 5 min."})
    assert response.status_code == 200, response.content
    assert response.json()["state"] == ChangeState.SUBMITTED  # decided again
    withdrawn = session(world.people.viewer).get(f"/api/v1/approvals/?change={change.pk}&withdrawn=true").json()
    assert withdrawn["count"] == 1


def test_conflicts_list_overlapping_changes_on_a_shared_service(world):
    change, overlapping = raise_change(world), raise_change(world)
    elsewhere = services.change_create(
        actor=world.people.rm,
        change_type=ChangeType.NORMAL,
        title="Search",
        planned_start=change.planned_start,
        planned_end=change.planned_end,
        services=[world.other_service],
    )
    response = session(world.people.viewer).get(f"/api/v1/changes/{change.pk}/conflicts/")
    assert response.status_code == 200
    assert [shown["number"] for shown in response.json()] == [overlapping.number]
    assert elsewhere.number not in str(response.content)


def test_an_emergency_approver_overrides_a_freeze_with_a_reason(world):
    freeze = FreezeFactory(start=timezone.now(), end=timezone.now() + timedelta(days=10), services=[world.service])
    change = raise_change(world, change_type=ChangeType.EMERGENCY)
    url = f"/api/v1/changes/{change.pk}/override-freeze/"
    assert session(world.people.ea).post(url, {}, format="json").status_code == 400
    assert session(world.people.dm).post(url, {"reason": "Outage."}, format="json").status_code == 403
    response = session(world.people.ea).post(url, {"reason": "Outage.", "freeze": freeze.pk}, format="json")
    assert response.status_code == 200, response.content
    [override] = session(world.people.viewer).get(f"/api/v1/freeze-overrides/?change={change.pk}").json()["results"]
    assert (override["granted_by"], override["freeze"], override["change"]) == ("ea", freeze.pk, change.number)
    assert session(world.people.viewer).get(f"/api/v1/freeze-overrides/{override['id']}/").status_code == 200


def test_templates_are_created_edited_and_pre_approved_by_someone_else(world):
    made = session(world.people.rm).post(
        "/api/v1/change-templates/",
        {"name": "Restart", "description": "Rolling restart.", "services": [world.service.pk], "risk": "low"},
        format="json",
    )
    assert made.status_code == 201, made.content
    assert made.json()["pre_approved"] is False
    url = f"/api/v1/change-templates/{made.json()['id']}"
    assert session(world.people.ca).get(f"{url}/").json()["actions"] == ["approve"]
    approved = session(world.people.ca).post(f"{url}/approve/")
    assert approved.status_code == 200, approved.content
    assert approved.json()["pre_approved"] is True
    assert session(world.people.ea).post(f"{url}/approve/").status_code == 409  # decided already
    edited = session(world.people.rm).patch(f"{url}/", {"description": "Rolling restart, one by one."})
    assert edited.json()["pre_approved"] is False  # what the CAB approved changed
    assert ChangeTemplate.objects.get(pk=made.json()["id"]).approved_at is None
    listed = session(world.people.viewer).get("/api/v1/change-templates/?pre_approved=false").json()
    assert listed["count"] == 1


def test_changes_are_filtered_and_searched(world, template):
    raise_change(world)
    client = session(world.people.viewer)
    assert client.get("/api/v1/changes/?state=draft&change_type=normal").json()["count"] == 1
    assert client.get("/api/v1/changes/?search=Shop").json()["count"] == 1
    assert client.get(f"/api/v1/changes/?services={world.other_service.pk}").json()["count"] == 0
    assert client.get("/api/v1/changes/?services=abc").status_code == 400
    assert client.get("/api/v1/changes/?planned_start__gte=not-a-date").status_code == 400
    assert "actions" not in client.get("/api/v1/changes/").json()["results"][0]
