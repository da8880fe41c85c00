"""Windows, freezes, change schedules and overrides: may these services deploy here now? And is this release
eligible for production at this moment?
"""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.utils import timezone

from cmdb.choices import EnvironmentTier
from rdm_site.exceptions import UnmetConditions
from rdm_site.models import AuditEvent
from releases import services
from releases.models import ReleasePolicy
from releases.scheduling import deployment_permitted, production_deployment_eligible
from tests.releases.conftest import (
    add_unit,
    approve_plan,
    approved_change,
    green_release,
    remaining_gates,
    validated_package,
)
from tests.releases.factories import ChangeFactory, EnvironmentFactory, FreezeFactory, ServiceFactory, WindowFactory

pytestmark = pytest.mark.django_db


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def production():
    return EnvironmentFactory(name="prod", tier=EnvironmentTier.PRODUCTION)


@pytest.fixture
def shop():
    return ServiceFactory(name="Shop")


@pytest.fixture
def weekly(production):
    """Tuesday and Thursday 22:00 to 02:00 Europe/London, for every service."""
    return WindowFactory(name="Tue/Thu night", environments=[production])


# Tuesday 21 January 2025, 22:00 GMT (= UTC) to Wednesday 02:00.
OPEN, CLOSE = utc(2025, 1, 21, 22), utc(2025, 1, 22, 2)


def test_production_needs_a_window_and_says_so_when_none_is_defined(production, shop):
    answer = deployment_permitted([shop], production, OPEN)
    assert not answer.permitted
    assert answer.reasons == ["no release window is defined for prod"]


def test_window_start_is_inclusive_and_end_exclusive(production, shop, weekly):
    assert deployment_permitted([shop], production, OPEN).permitted
    assert deployment_permitted([shop], production, OPEN).window == weekly
    assert deployment_permitted([shop], production, CLOSE - timedelta(microseconds=1)).permitted
    shut = deployment_permitted([shop], production, CLOSE)
    assert not shut.permitted
    assert shut.reasons == [
        "no release window is open for Shop in prod at 2025-01-22 02:00 UTC; "
        "next: Tue/Thu night opens Thu 2025-01-23 22:00 Europe/London"
    ]
    assert not deployment_permitted([shop], production, OPEN - timedelta(microseconds=1)).permitted


@pytest.mark.parametrize(
    ("opening_utc", "label"),
    [
        (utc(2025, 3, 25, 22), "GMT, before the spring change"),
        (utc(2025, 4, 1, 21), "BST, after the spring change"),
        (utc(2025, 10, 21, 21), "BST, before the autumn change"),
        (utc(2025, 10, 28, 22), "GMT, after the autumn change"),
    ],
)
def test_the_window_opens_at_22_00_london_time_on_both_sides_of_each_dst_change(
    production, shop, weekly, opening_utc, label
):
    assert deployment_permitted([shop], production, opening_utc).permitted, label
    assert not deployment_permitted([shop], production, opening_utc - timedelta(minutes=1)).permitted, label


def test_windows_in_two_time_zones_each_serve_their_own_service(production):
    # given Shop deploys 22:00 London, Search 20:00 New York (01:00 UTC in January), each for four hours
    shop, search = ServiceFactory(name="Shop"), ServiceFactory(name="Search")
    WindowFactory(name="London", environments=[production], services=[shop])
    WindowFactory(
        name="New York", environments=[production], services=[search], time_zone="America/New_York", start_time=time(20)
    )
    # when both deploy at 01:30 UTC on Wednesday 22 January, both windows are open
    assert deployment_permitted([shop, search], production, utc(2025, 1, 22, 1, 30)).permitted
    # at 23:00 UTC on Tuesday only London is open, and the refusal names Search only
    answer = deployment_permitted([shop, search], production, utc(2025, 1, 21, 23))
    assert [reason.split(" at ")[0] for reason in answer.reasons] == ["no release window is open for Search in prod"]


def test_a_lower_tier_needs_no_window_unless_one_lists_it(shop):
    staging = EnvironmentFactory(name="stage", tier=EnvironmentTier.STAGING)
    assert deployment_permitted([shop], staging, utc(2025, 1, 22, 12)).permitted
    WindowFactory(environments=[staging])
    assert not deployment_permitted([shop], staging, utc(2025, 1, 22, 12)).permitted
    assert deployment_permitted([shop], staging, OPEN).permitted


def test_overlapping_freezes_are_all_reported(production, shop, weekly):
    FreezeFactory(name="Year end", start=utc(2025, 1, 1), end=utc(2025, 2, 1), reason="Year-end close")
    FreezeFactory(name="Sale", start=utc(2025, 1, 20), end=utc(2025, 1, 25), reason="Winter sale", services=[shop])
    FreezeFactory(name="Other service", start=utc(2025, 1, 1), end=utc(2025, 2, 1), services=[ServiceFactory()])
    FreezeFactory(
        name="Other environment",
        start=utc(2025, 1, 1),
        end=utc(2025, 2, 1),
        environments=[EnvironmentFactory(name="dr", tier=EnvironmentTier.PRODUCTION)],
    )
    answer = deployment_permitted([shop], production, OPEN)
    assert not answer.permitted
    assert [freeze.name for freeze in answer.freezes] == ["Year end", "Sale"]
    assert answer.reasons == [
        "inside freeze Year end (2025-01-01 00:00 UTC to 2025-02-01 00:00 UTC): Year-end close",
        "inside freeze Sale (2025-01-20 00:00 UTC to 2025-01-25 00:00 UTC): Winter sale",
    ]


def test_a_freeze_ends_exclusively(production, shop):
    staging = EnvironmentFactory(name="stage", tier=EnvironmentTier.STAGING)
    FreezeFactory(start=utc(2025, 1, 1), end=utc(2025, 1, 2))
    assert not deployment_permitted([shop], staging, utc(2025, 1, 1)).permitted
    assert deployment_permitted([shop], staging, utc(2025, 1, 2)).permitted


def test_every_reason_at_once(production, shop, weekly):
    FreezeFactory(name="Year end", start=utc(2025, 1, 1), end=utc(2025, 2, 1))
    change = ChangeFactory(planned_start=utc(2025, 1, 23, 22), planned_end=utc(2025, 1, 23, 23), services=[shop])
    answer = deployment_permitted([shop], production, utc(2025, 1, 22, 12), change=change)
    assert len(answer.reasons) == 3
    assert answer.reasons[0].startswith("no release window is open for Shop")
    assert answer.reasons[1].startswith(f"change {change.number}'s schedule")
    assert answer.reasons[1].endswith("does not cover 2025-01-22 12:00 UTC")
    assert answer.reasons[2].startswith("inside freeze Year end")


def test_the_window_must_cover_the_change_schedule(production, shop, weekly):
    change = ChangeFactory(planned_start=OPEN + timedelta(hours=3), planned_end=CLOSE + timedelta(hours=1))
    answer = deployment_permitted([shop], production, OPEN + timedelta(hours=3, minutes=5), change=change)
    assert answer.reasons == [
        f"change {change.number}'s schedule (2025-01-22 01:00 UTC to 2025-01-22 03:00 UTC) does not fit in window "
        "Tue/Thu night (Tue 2025-01-21 22:00 Europe/London to Wed 2025-01-22 02:00 Europe/London)"
    ]


def test_an_emergency_override_lifts_the_freeze_with_its_reason_recorded(world):
    p = world.people
    WindowFactory(name="nightly", rrule="FREQ=DAILY", start_time=time(0), duration=timedelta(days=1),
                  environments=[world.production])  # fmt: skip
    start = timezone.now() + timedelta(days=2)
    freeze = FreezeFactory(name="Peak", start=start - timedelta(days=1), end=start + timedelta(days=1))
    change = services.change_create(
        actor=p.rm,
        change_type="normal",
        title="Fix",
        planned_start=start,
        planned_end=start + timedelta(hours=1),
        services=[world.service],
    )
    at = start + timedelta(minutes=10)
    assert not deployment_permitted([world.service], world.production, at, change=change).permitted
    # when an emergency approver overrides the freeze for this change
    override = services.freeze_override(change=change, actor=p.ea, reason="Card payments fail", freeze=freeze)
    answer = deployment_permitted([world.service], world.production, at, change=change, override=override)
    # then it is permitted, the freeze is still shown, and the override's reason is noted
    assert answer.permitted
    assert answer.freezes == [freeze]
    assert answer.override == override
    assert answer.notes == [
        f"freeze Peak overridden for {change.number} by ea at {override.granted_at:%Y-%m-%d %H:%M %Z}: "
        "Card payments fail"
    ]
    # but the override does not carry to another change, nor outside the change's schedule
    other = ChangeFactory(planned_start=change.planned_start, planned_end=change.planned_end)
    assert not deployment_permitted([world.service], world.production, at, change=other, override=override).permitted
    later = change.planned_end + timedelta(minutes=1)
    assert not deployment_permitted([world.service], world.production, later, override=override).permitted


def test_a_moment_must_be_aware(production, shop):
    with pytest.raises(ValueError, match="aware"):
        deployment_permitted([shop], production, datetime(2025, 1, 21, 22))


# --- production eligibility -----------------------------------------------------------------------


def _eligible_world(world):
    """A green release with an approved change inside the next opening of a nightly window."""
    window = WindowFactory(name="nightly", rrule="FREQ=DAILY", start_time=time(22), environments=[world.production])
    opening = window.next_occurrence(timezone.now() + timedelta(days=1))
    release, change = green_release(world, change_start=opening.start)
    return release, change, opening


def test_a_green_release_with_an_approved_change_in_an_open_window_is_eligible(world):
    release, change, opening = _eligible_world(world)
    assert production_deployment_eligible(release, world.production, opening.start + timedelta(minutes=30)) == []
    assert production_deployment_eligible(release, world.production, opening.start, change=change) == []


def test_eligibility_lists_every_unmet_condition(world):
    release, _, opening = _eligible_world(world)
    services.package_register(release=release, actor=world.people.ci, version="b2")  # withdraws the approval
    release.refresh_from_db()
    outside = opening.start - timedelta(hours=1)
    problems = production_deployment_eligible(release, world.production, outside)
    assert (
        problems[0] == f"no approved normal or standard change of release {release} covers {outside:%Y-%m-%d %H:%M} UTC"
    )
    assert "the release plan is not approved: the release is submitted" in problems
    assert "the current package is not validated (build b2 is assembling)" in problems
    assert any(problem.startswith("Release plan approved by stakeholders: 0 of 1") for problem in problems)
    assert any(problem.startswith("no release window is open for Shop") for problem in problems)


def test_a_lower_tier_is_not_production(world):
    release, _, opening = _eligible_world(world)
    problems = production_deployment_eligible(release, world.staging, opening.start + timedelta(minutes=5))
    assert problems[0] == "staging is a staging environment, not production"


def test_an_emergency_release_needs_an_emergency_change(world):
    release, change, opening = _eligible_world(world)
    release.release_type = "emergency"
    release.save()
    problems = production_deployment_eligible(release, world.production, opening.start, change=change)
    assert f"change {change.number} is normal; emergency releases need emergency" in problems


def test_an_emergency_change_of_an_emergency_release_deploys_outside_every_window_by_override(world):
    # given an emergency release, green, whose emergency change falls at noon, outside the nightly window
    p = world.people
    WindowFactory(name="nightly", rrule="FREQ=DAILY", start_time=time(22), duration=timedelta(hours=2),
                  environments=[world.production])  # fmt: skip
    ReleasePolicy.objects.filter(pk=world.policy.pk).update(release_type="emergency")
    world.release.release_type = "emergency"
    world.release.save()
    release = _ready(world)
    noon = (timezone.now() + timedelta(days=2)).replace(hour=12, minute=0, second=0, microsecond=0)
    emergency = approved_change(world, noon, hours=2, change_type="emergency")
    at = noon + timedelta(minutes=15)
    assert any(
        problem.startswith("no release window is open for Shop")
        for problem in production_deployment_eligible(release, world.production, at, change=emergency)
    )
    # when the emergency approver overrides the windows for it (no freeze is needed for that)
    override = services.freeze_override(change=emergency, actor=p.ea, reason="Card payments fail", outside_windows=True)
    # then it may deploy, and the override is noted with who granted it and why
    assert production_deployment_eligible(release, world.production, at, change=emergency, override=override) == []
    answer = deployment_permitted([world.service], world.production, at, change=emergency, override=override)
    assert answer.override == override
    [note] = answer.notes
    assert note.startswith(f"release windows overridden for {emergency.number} by ea at ")
    assert ": Card payments fail (lifted: no release window is open for Shop" in note
    assert AuditEvent.objects.filter(
        action="change.override_freeze", reason="the release windows: Card payments fail"
    ).exists()
    # but only within the change's schedule
    late = emergency.planned_end + timedelta(minutes=5)
    assert not deployment_permitted(
        [world.service], world.production, late, change=emergency, override=override
    ).permitted


def _ready(world):
    """The release ready for production, without a change yet."""
    add_unit(world)
    approve_plan(world)
    validated_package(world)
    remaining_gates(world)
    services.release_mark_ready(release=world.release, actor=world.people.rm)
    return world.reload()


def test_a_normal_change_may_never_deploy_outside_a_window(world):
    _, normal = green_release(world)
    with pytest.raises(UnmetConditions, match="only an emergency change of an emergency release may deploy outside"):
        services.freeze_override(change=normal, actor=world.people.ea, reason="Hurry", outside_windows=True)
    assert not normal.freeze_overrides.exists()
