"""The change pages and the approvers' queue: who sees which buttons, forged posts refused, conflicts shown,
the change form, query counts.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from releases import services
from releases.choices import ChangeState, ChangeType, Decision, ReleaseType
from releases.models import Approval, ChangeRecord, FreezeOverride
from releases.selectors import changes_awaiting_decision_by
from tests.releases.factories import ChangeFactory, ChangeTemplateFactory, FreezeFactory

pytestmark = pytest.mark.django_db


def _change(world, change_type=ChangeType.NORMAL, start=None, hours=2, **fields) -> ChangeRecord:
    start = start or timezone.now() + timedelta(days=2)
    return services.change_create(
        actor=fields.pop("actor", world.people.rm),
        change_type=change_type,
        title=fields.pop("title", "Upgrade the shop"),
        planned_start=start,
        planned_end=start + timedelta(hours=hours),
        services=fields.pop("services", [world.service]),
        **fields,
    )


def _assessed(world, change_type=ChangeType.NORMAL, **fields) -> ChangeRecord:
    change = _change(world, change_type, **fields)
    services.change_submit(change=change, actor=change.requested_by)
    services.change_assess(change=change, actor=world.people.ea, assessment="Reversible.")
    change.refresh_from_db()
    return change


def _transition(change, action) -> str:
    return reverse("releases:change_transition", args=[change.pk, action])


# --- reading ---------------------------------------------------------------------------------------


def test_a_viewer_reads_the_change_pages_without_a_button(client, world):
    change = _assessed(world)
    template = ChangeTemplateFactory(services=[world.service])
    client.force_login(world.people.viewer)
    for page in (
        reverse("releases:change_list"),
        reverse("releases:change_queue"),
        change.get_absolute_url(),
        reverse("releases:changetemplate_list"),
        template.get_absolute_url(),
        reverse("releases:freezeoverride_list"),
    ):
        answer = client.get(page)
        assert answer.status_code == 200, page
        assert b"data-action=" not in answer.content, page
        assert b'data-bs-target="#change-' not in answer.content, page
    queue = client.get(reverse("releases:change_queue")).content.decode()
    assert change.number in queue
    assert "read only" in queue
    assert client.get(reverse("releases:change_create")).status_code == 403


def test_a_forged_approval_by_a_viewer_is_refused_and_records_nothing(client, world):
    change = _assessed(world)
    client.force_login(world.people.viewer)
    assert client.post(_transition(change, "approve"), {"reason": "sneaky"}).status_code == 403
    change.refresh_from_db()
    assert change.state == ChangeState.ASSESSED
    assert not Approval.objects.filter(change=change).exists()


def test_the_requester_may_not_decide_on_their_own_change(client, world):
    change = _assessed(world, actor=world.people.dm)
    world.people.dm.groups.add(*world.people.ca.groups.all())  # a deployment manager who also sits on the CAB
    client.force_login(world.people.dm)
    page = client.get(change.get_absolute_url()).content.decode()
    assert 'data-action="approve"' not in page
    assert "Not available to you" in page
    assert "requested" in page
    assert change not in changes_awaiting_decision_by(world.people.dm)
    assert client.post(_transition(change, "approve")).status_code == 403
    assert not Approval.objects.filter(change=change).exists()


def test_the_change_page_flags_conflicts_with_what_overlaps(client, world):
    start = timezone.now() + timedelta(days=2)
    change = _change(world, start=start, configuration_items=[world.ci])
    other = _change(world, start=start + timedelta(hours=1), title="Restart the shop", services=[world.service])
    client.force_login(world.people.ca)
    page = client.get(change.get_absolute_url()).content.decode()
    assert "Conflict: 1 other change overlaps this one" in page
    assert f'href="{other.get_absolute_url()}"' in page
    assert f"on service {world.service.name}" in page


# --- the queue -------------------------------------------------------------------------------------


def test_the_queue_splits_emergency_and_normal_changes_for_the_approver(client, world):
    normal = _assessed(world)
    emergency = _assessed(world, ChangeType.EMERGENCY, title="Hotfix the shop")
    client.force_login(world.people.ea)
    page = client.get(reverse("releases:change_queue")).content.decode()
    emergency_section, normal_section = page.split('id="queue-normal"')
    assert f'data-change="{emergency.number}"' in emergency_section
    assert f'data-change="{normal.number}"' not in emergency_section
    assert f'data-change="{normal.number}"' in normal_section
    assert f'action="{_transition(normal, "approve")}"' in page
    assert "Conflict" in page  # both touch the shop at the same time


def test_a_change_approver_sees_no_emergency_change_in_their_queue(client, world):
    _assessed(world, ChangeType.EMERGENCY)
    normal = _assessed(world, start=timezone.now() + timedelta(days=5))
    assert list(changes_awaiting_decision_by(world.people.ca)) == [normal]


def test_rejecting_from_the_queue_records_the_comment_and_comes_back(client, world):
    change = _assessed(world)
    client.force_login(world.people.ca)
    queue = reverse("releases:change_queue")
    answer = client.post(_transition(change, "reject"), {"reason": "Clashes with the sale.", "next": queue})
    assert answer.status_code == 302
    assert answer.url == queue
    decision = Approval.objects.get(change=change)
    assert (decision.decision, decision.reason, decision.approver) == (
        Decision.REJECTED,
        "Clashes with the sale.",
        world.people.ca,
    )


def test_rejecting_without_a_reason_is_explained_and_changes_nothing(client, world):
    change = _assessed(world)
    client.force_login(world.people.ca)
    answer = client.post(_transition(change, "reject"), {"reason": ""}, follow=True)
    assert "reason for rejecting" in answer.content.decode()
    change.refresh_from_db()
    assert change.state == ChangeState.ASSESSED


@pytest.mark.parametrize("url_name", ["releases:change_list", "releases:change_queue", "releases:changetemplate_list"])
def test_change_lists_make_the_same_queries_for_ten_times_the_rows(client, world, url_name):
    client.force_login(world.people.ca)

    def queries_with(count: int) -> int:
        for _ in range(count):
            ChangeFactory(state=ChangeState.ASSESSED, services=[world.service], configuration_items=[world.ci])
            ChangeTemplateFactory(services=[world.service])
        client.get(reverse(url_name))  # warm the permission caches of the session
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse(url_name)).status_code == 200
        return len(captured)

    few = queries_with(2)
    assert queries_with(18) == few


# --- override a freeze -----------------------------------------------------------------------------


def test_only_an_emergency_approver_is_offered_a_freeze_override(client, world):
    start = timezone.now() + timedelta(days=2)
    change = _change(world, start=start)
    client.force_login(world.people.ea)
    assert 'data-action="override_freeze"' not in client.get(change.get_absolute_url()).content.decode()
    FreezeFactory(start=start - timedelta(days=1), end=start + timedelta(days=1), services=[world.service])
    assert 'data-action="override_freeze"' in client.get(change.get_absolute_url()).content.decode()
    client.force_login(world.people.ca)
    page = client.get(change.get_absolute_url()).content.decode()
    assert 'data-action="override_freeze"' not in page
    assert client.post(_transition(change, "override_freeze"), {"reason": "Outage"}).status_code == 403
    assert not FreezeOverride.objects.exists()
    client.force_login(world.people.ea)
    answer = client.post(_transition(change, "override_freeze"), {"reason": "Card payments are down."})
    assert answer.status_code == 302
    assert FreezeOverride.objects.get(change=change).reason == "Card payments are down."


def test_an_emergency_approver_lets_an_emergency_change_deploy_outside_the_windows_from_its_page(client, world):
    # given an emergency change of an emergency release, with no freeze in the way
    world.release.release_type = ReleaseType.EMERGENCY
    world.release.save()
    change = _change(world, ChangeType.EMERGENCY, release=world.release)
    normal = _change(world, title="Routine")
    client.force_login(world.people.ea)
    # then only the emergency change offers the window override, with its checkbox
    page = client.get(change.get_absolute_url()).content.decode()
    assert "Override release windows" in page
    assert 'name="outside_windows"' in page
    assert 'data-action="override_freeze"' not in client.get(normal.get_absolute_url()).content.decode()
    # when the approver grants it / then it is recorded with the reason
    answer = client.post(
        _transition(change, "override_freeze"), {"reason": "Card payments are down.", "outside_windows": "true"}
    )
    assert answer.status_code == 302
    override = FreezeOverride.objects.get(change=change)
    assert (override.outside_windows, override.granted_by) == (True, world.people.ea)


# --- raising a change ------------------------------------------------------------------------------


def _form(world, **overrides) -> dict:
    start = timezone.now() + timedelta(days=3)
    return {
        "change_type": ChangeType.NORMAL,
        "title": "Rotate the shop's certificates",
        "description": "",
        "risk": "low",
        "impact": "None expected.",
        "planned_start": f"{start:%Y-%m-%dT%H:%M}",
        "planned_end": f"{start + timedelta(hours=1):%Y-%m-%dT%H:%M}",
        "services": [world.service.pk],
        **overrides,
    }


@pytest.mark.parametrize("change_type", [ChangeType.NORMAL, ChangeType.EMERGENCY])
def test_a_release_manager_raises_a_normal_or_an_emergency_change(client, world, change_type):
    client.force_login(world.people.rm)
    assert f'value="{change_type}"' in client.get(reverse("releases:change_create")).content.decode()
    answer = client.post(reverse("releases:change_create"), _form(world, change_type=change_type))
    change = ChangeRecord.objects.get(title="Rotate the shop's certificates")
    assert answer.url == change.get_absolute_url()
    assert (change.change_type, change.state, change.requested_by, list(change.services.all())) == (
        change_type,
        ChangeState.DRAFT,
        world.people.rm,
        [world.service],
    )


def test_form_errors_are_shown_next_to_the_fields_with_the_values_kept(client, world):
    client.force_login(world.people.rm)
    start = timezone.now() + timedelta(days=3)
    form = _form(world, title="", planned_end=f"{start - timedelta(hours=1):%Y-%m-%dT%H:%M}")
    form["planned_start"] = f"{start:%Y-%m-%dT%H:%M}"
    answer = client.post(reverse("releases:change_create"), form)
    page = answer.content.decode()
    assert answer.status_code == 422
    assert 'id="id_title_errors"' in page
    assert "Give the change a title." in page
    assert 'id="id_planned_end_errors"' in page
    assert "None expected." in page
    assert not ChangeRecord.objects.exists()


def test_a_standard_change_comes_from_a_template_with_its_services_and_risk(client, world):
    template = ChangeTemplateFactory(name="Flip a flag", services=[world.service], risk="low")
    client.force_login(world.people.ci)  # a build engineer: standard changes only
    page = client.get(reverse("releases:change_create") + f"?template={template.pk}").content.decode()
    assert 'value="standard"' in page
    assert 'value="normal"' not in page
    answer = client.post(
        reverse("releases:change_create"),
        _form(world, change_type=ChangeType.STANDARD, template=template.pk, title="", risk="high", services=[]),
    )
    change = ChangeRecord.objects.get()
    assert answer.url == change.get_absolute_url()
    assert (change.template, change.title, change.risk, list(change.services.all())) == (
        template,
        "Flip a flag",
        "low",
        [world.service],
    )


def test_a_build_engineer_may_not_raise_a_normal_change_even_by_a_forged_post(client, world):
    client.force_login(world.people.ci)
    answer = client.post(reverse("releases:change_create"), _form(world))
    assert answer.status_code == 422  # the form offers standard changes only
    assert not ChangeRecord.objects.exists()


def test_editing_the_schedule_of_an_approved_change_withdraws_the_approval(client, world):
    change = _assessed(world)
    services.change_approve(change=change, actor=world.people.ca, reason="Fine.")
    client.force_login(world.people.rm)
    form = _form(world, title=change.title, impact="")
    form["planned_start"] = f"{change.planned_start + timedelta(days=1):%Y-%m-%dT%H:%M}"
    form["planned_end"] = f"{change.planned_end + timedelta(days=1):%Y-%m-%dT%H:%M}"
    answer = client.post(reverse("releases:change_update", args=[change.pk]), form)
    assert answer.status_code == 302
    change.refresh_from_db()
    assert change.state == ChangeState.SUBMITTED
    page = client.get(change.get_absolute_url()).content.decode()
    assert 'class="rdm-withdrawn"' in page


def test_a_change_approver_assesses_from_the_queue_with_risk_and_impact(client, world):
    change = _change(world)
    services.change_submit(change=change, actor=world.people.rm)
    client.force_login(world.people.ca)
    queue = reverse("releases:change_queue")
    page = client.get(queue).content.decode()
    assert f'action="{_transition(change, "assess")}"' in page
    answer = client.post(
        _transition(change, "assess"),
        {"assessment": "Touches checkout.", "risk": "high", "impact": "Checkout down 5 minutes.", "next": queue},
    )
    assert answer.url == queue
    change.refresh_from_db()
    assert (change.state, change.risk, change.impact, change.assessment) == (
        ChangeState.ASSESSED,
        "high",
        "Checkout down 5 minutes.",
        "Touches checkout.",
    )
