"""The release admin: every model has its pages; transitions are actions calling the services with the signed-in
user, and refusals come back as messages.
"""

import json

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from rdm_site.models import AuditEvent
from releases.choices import ReleaseState
from releases.models import Release
from tests.releases.conftest import SHA, green_release

pytestmark = pytest.mark.django_db

MODELS = [
    "releasepolicy",
    "releasewindow",
    "freezeperiod",
    "release",
    "releaseunit",
    "rollbackplan",
    "gateevidence",
    "releasebaseline",
    "knowledgearticle",
    "releasepackage",
    "packageartifact",
    "testrun",
    "changetemplate",
    "changerecord",
    "freezeoverride",
    "approval",
]


def _staff(user: User) -> User:
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return User.objects.get(pk=user.pk)


@pytest.mark.parametrize("model", MODELS)
def test_every_release_admin_page_lists_its_records(client, world, model):
    green_release(world)
    client.force_login(User.objects.create_superuser("boss", "boss@rdm.example", "x"))
    assert client.get(reverse(f"admin:releases_{model}_changelist")).status_code == 200


RECORDED_ELSEWHERE = {"releasebaseline", "freezeoverride", "approval"}


@pytest.mark.parametrize("model", MODELS)
def test_every_add_page_opens_except_for_rows_written_by_actions_elsewhere(client, world, model):
    client.force_login(User.objects.create_superuser("boss", "boss@rdm.example", "x"))
    response = client.get(reverse(f"admin:releases_{model}_add"))
    assert response.status_code == (403 if model in RECORDED_ELSEWHERE else 200)


def test_the_release_page_shows_the_go_no_go_checklist(client, world):
    release, _ = green_release(world)
    client.force_login(User.objects.create_superuser("boss", "boss@rdm.example", "x"))
    page = client.get(reverse("admin:releases_release_change", args=[release.pk]))
    assert page.status_code == 200
    assert "✔ Backups taken and verified: posted by ci via tool backup-bot, verified by dm" in page.content.decode()


def test_an_action_runs_the_service_as_the_signed_in_user_and_shows_refusals(client, world):
    # given the release manager signed in to the admin, and a draft release plus one already cancelled
    client.force_login(_staff(world.people.rm))
    cancelled = Release.objects.create(
        name="Old",
        version="1",
        release_type=world.policy.release_type,
        policy=world.policy,
        release_manager=world.people.rm,
        state=ReleaseState.CANCELLED,
    )
    # when "Plan" is applied to both
    response = client.post(
        reverse("admin:releases_release_changelist"),
        {"action": "plan", "_selected_action": [world.release.pk, cancelled.pk]},
        follow=True,
    )
    # then the draft is planned, and the refusal for the cancelled one is shown
    assert world.reload().state == ReleaseState.PLANNED
    shown = [str(message) for message in response.context["messages"]]
    assert "Shop 2.0: plan done." in shown
    assert "Old 1: Cannot plan release Old 1: it is cancelled." in shown


def test_an_action_needing_a_reason_asks_for_it_first(client, world):
    client.force_login(_staff(world.people.rm))
    url = reverse("admin:releases_release_changelist")
    asked = client.post(url, {"action": "cancel", "_selected_action": [world.release.pk]})
    assert asked.status_code == 200
    assert "Why is it cancelled?" in asked.content.decode()
    client.post(url, {"action": "cancel", "_selected_action": [world.release.pk], "apply": "1", "reason": "Dropped"})
    release = world.reload()
    assert (release.state, release.end_reason) == (ReleaseState.CANCELLED, "Dropped")


def test_a_role_without_the_permission_is_refused_by_the_service(client, world):
    client.force_login(_staff(world.people.viewer))
    response = client.post(
        reverse("admin:releases_release_changelist"),
        {"action": "submit_for_approval", "_selected_action": [world.release.pk]},
        follow=True,
    )
    # (a Viewer can open the list but the action is refused: the service decides, not the page)
    assert world.reload().state == ReleaseState.DRAFT
    assert response.status_code == 200


def test_a_change_added_in_the_admin_is_created_by_the_service(client, world):
    from releases.models import ChangeRecord

    client.force_login(_staff(world.people.rm))
    start = world.release.planned_start
    form = {
        "change_type": "normal",
        "title": "Deploy from the admin",
        "risk": "low",
        "services": [world.service.pk],
        "planned_start_0": f"{start:%Y-%m-%d}",
        "planned_start_1": "10:00:00",
        "planned_end_0": f"{start:%Y-%m-%d}",
        "planned_end_1": "12:00:00",
        "release": world.release.pk,
        "approvals-TOTAL_FORMS": 0,
        "approvals-INITIAL_FORMS": 0,
        "freeze_overrides-TOTAL_FORMS": 0,
        "freeze_overrides-INITIAL_FORMS": 0,
    }
    response = client.post(reverse("admin:releases_changerecord_add"), form, follow=True)
    assert response.status_code == 200
    change = ChangeRecord.objects.get(title="Deploy from the admin")
    assert change.number.startswith("CHG-")
    assert (change.requested_by, list(change.services.all())) == (world.people.rm, [world.service])


def test_a_release_added_in_the_admin_is_created_by_the_service(client, world):
    from rdm_site.selectors import audit_events_for

    client.force_login(_staff(world.people.rm))
    form = {
        "name": "Portal",
        "version": "1.0",
        "release_type": world.policy.release_type,
        "policy": world.policy.pk,
        "services": [world.service.pk],
        "release_manager": world.people.rm.pk,
        "description": "New portal",
        "els_exit_criteria": "{}",
        **{f"{prefix}-{field}": 0 for prefix in ("units", "packages", "approvals", "gate_evidence")
           for field in ("TOTAL_FORMS", "INITIAL_FORMS")},
    }  # fmt: skip
    response = client.post(reverse("admin:releases_release_add"), form, follow=True)
    assert response.status_code == 200
    release = Release.objects.get(name="Portal")
    assert (release.requested_by, list(release.services.all())) == (world.people.rm, [world.service])
    assert audit_events_for(release).first().action == "release.create"


def _inline_management(*prefixes: str) -> dict:
    return {f"{prefix}-{field}": 0 for prefix in prefixes for field in ("TOTAL_FORMS", "INITIAL_FORMS")}


def test_a_build_engineer_registers_a_package_and_its_artifacts_in_the_admin_through_the_services(client, world):
    # given the Build/CI Engineer signed in to the admin (the role grants releases.register_package only)
    from rdm_site.selectors import audit_events_for
    from releases.models import ReleasePackage

    client.force_login(_staff(world.people.ci))
    url = reverse("admin:releases_releasepackage_add")
    # when they open the add page and save a package with an artifact whose digest is in upper case
    assert client.get(url).status_code == 200
    form = {
        "release": world.release.pk,
        "version": "b7",
        "commits": '[{"sha": "abc123", "committed_at": "2026-11-30T09:15:00Z"}]',
        "work_items": '["SHOP-7"]',
        "notes": "",
        **_inline_management("test_runs"),
        "artifacts-TOTAL_FORMS": 1,
        "artifacts-INITIAL_FORMS": 0,
        "artifacts-0-name": "shop.tar.gz",
        "artifacts-0-uri": "s3://builds/shop.tar.gz",
        "artifacts-0-sha256": SHA.upper(),
    }
    response = client.post(url, form, follow=True)
    # then the services registered it as theirs, with the digest in lower case, and the trail holds both
    assert response.status_code == 200
    package = ReleasePackage.objects.get(release=world.release, version="b7")
    assert (package.built_by, package.first_commit_at.isoformat()) == (world.people.ci, "2026-11-30T09:15:00+00:00")
    assert list(package.artifacts.values_list("sha256", flat=True)) == [SHA]
    actions = {event.action: event for event in audit_events_for(package)}
    assert "package.register" in actions
    assert actions["package.artifact_add"].changes == {"artifact": [None, f"shop.tar.gz sha256:{SHA}"]}


def _release_form(world, **fields) -> dict:
    return {
        "name": "Portal",
        "version": "1.0",
        "release_type": world.policy.release_type,
        "policy": world.policy.pk,
        "services": [world.service.pk],
        "release_manager": world.people.rm.pk,
        "description": "New portal",
        "els_exit_criteria": "{}",
        **_inline_management("units", "packages", "approvals", "gate_evidence"),
        **fields,
    }


def test_the_els_plan_typed_on_the_release_add_form_is_kept(client, world):
    client.force_login(_staff(world.people.rm))
    form = _release_form(
        world, els_exit_criteria='{"max_incidents": 1}', els_min_duration_days=5, els_staff=[world.people.dm.pk]
    )
    client.post(reverse("admin:releases_release_add"), form, follow=True)
    release = Release.objects.get(name="Portal")
    assert (release.els_exit_criteria, release.els_min_duration_days) == ({"max_incidents": 1}, 5)
    assert list(release.els_staff.all()) == [world.people.dm]


def test_a_refused_save_comes_back_with_the_refusal_and_what_was_typed(client, world):
    # given a release typed as an emergency release under the minor policy
    client.force_login(_staff(world.people.rm))
    form = _release_form(world, name="Typed with care", release_type="emergency")
    # when it is saved
    response = client.post(reverse("admin:releases_release_add"), form)
    # then the same form comes back, with the service's refusal and the name as typed; nothing is created
    page = response.content.decode()
    assert response.status_code == 200
    assert "governs minor releases, not emergency ones" in page
    assert 'value="Typed with care"' in page
    assert not Release.objects.filter(name="Typed with care").exists()


def test_a_policys_incident_correlation_window_is_edited_in_the_admin_through_the_service(client, world):
    client.force_login(_staff(world.people.rm))
    url = reverse("admin:releases_releasepolicy_change", args=[world.policy.pk])
    assert 'name="incident_correlation_hours"' in client.get(url).content.decode()
    policy = world.policy
    form = {
        "name": policy.name,
        "release_type": policy.release_type,
        "approvals_required": policy.approvals_required,
        "approver_roles": json.dumps(policy.approver_roles),
        "gates_required": json.dumps(policy.gates_required),
        "lead_time_days": policy.lead_time_days,
        "required_test_suites": json.dumps(policy.required_test_suites),
        "els_duration_days": policy.els_duration_days,
        "els_min_duration_days": policy.els_min_duration_days,
        "els_exit_criteria": json.dumps(policy.els_exit_criteria),
        "hotfix_window_days": policy.hotfix_window_days,
        "incident_correlation_hours": 48,
        "pir_due_days": policy.pir_due_days,
        "active": "on",
    }
    response = client.post(url, form, follow=True)
    assert response.status_code == 200
    policy.refresh_from_db()
    assert policy.incident_correlation_hours == 48
    event = AuditEvent.objects.get(action="releasepolicy.update", object_id=str(policy.pk))
    assert (event.actor_id, event.changes) == (world.people.rm.pk, {"incident_correlation_hours": [72, 48]})
