"""The release admin: every model has its pages; transitions are actions calling the services with the signed-in
user, and refusals come back as messages.
"""

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from releases.choices import ReleaseState
from releases.models import Release
from tests.releases.conftest import green_release

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
