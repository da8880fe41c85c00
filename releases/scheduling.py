"""May these services deploy to this environment at this moment? Windows, freezes and change schedules.

``deployment_permitted`` answers with every reason at once. The rules (DESIGN.md "Release windows,
freezes and risk"):

- A production environment needs an open release window for every service deployed. A lower tier
  needs one only when some window lists that environment; otherwise it is always open.
- A window serves the services it lists (none listed: every service) in the environments it lists.
  Occurrences are evaluated in the window's own time zone; start inclusive, end exclusive.
- Under a change, the moment must lie in the change's schedule, and that schedule must fit inside the
  window's opening (the window covers the change).
- A freeze applies when it covers the moment and its services and environments include the deployment
  (empty scope: all). Every applicable freeze is a reason, unless an emergency approver's
  ``FreezeOverride`` for this change covers it (then the override is noted, with its reason).
- An override granted ``outside_windows`` (emergency changes of emergency releases only) also lifts the
  window reasons, noted the same way; a normal change never deploys outside a window.

``production_deployment_eligible`` adds what the release itself needs; the deployment engine calls it
when a production deployment is scheduled, when it starts and before each wave.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from cmdb.choices import EnvironmentTier
from releases.checklist import Checklist, checklist_evaluate
from releases.choices import CHANGE_AUTHORISED_STATES, ChangeType, PackageState, ReleaseState, ReleaseType
from releases.models import ChangeRecord, FreezeOverride, FreezePeriod, Release, ReleaseWindow
from releases.recurrence import Occurrence
from releases.selectors import freezes_at, release_current_package, windows_for_environment

# The release states in which its plan counts as approved for a production deployment.
PLAN_APPROVED_STATES = (ReleaseState.APPROVED, ReleaseState.READY, ReleaseState.DEPLOYING)


@dataclass(frozen=True)
class Permission:
    """The answer: ``permitted`` when ``reasons`` is empty. ``window`` is the open window used (if one was
    needed), ``freezes`` every freeze in force (overridden ones too), ``notes`` the overrides applied.
    """

    permitted: bool
    reasons: list[str]
    window: ReleaseWindow | None
    freezes: list[FreezePeriod]
    override: FreezeOverride | None = None
    notes: list[str] = field(default_factory=list)
    occurrence: Occurrence | None = None


def _moment(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M %Z")


def _local(at: datetime, window: ReleaseWindow) -> str:
    from releases.recurrence import zone

    return at.astimezone(zone(window.time_zone)).strftime(f"%a %Y-%m-%d %H:%M {window.time_zone}")


def _serves(window: ReleaseWindow, service) -> bool:
    listed = window.services.all()
    return not listed or any(candidate.pk == service.pk for candidate in listed)


def _next_opening(windows, service, at: datetime) -> tuple[Occurrence, ReleaseWindow] | None:
    upcoming = [
        (occurrence, window)
        for window in windows
        if _serves(window, service) and (occurrence := window.next_occurrence(at)) is not None
    ]
    return min(upcoming, key=lambda pair: pair[0].start) if upcoming else None


def next_window_opening(service, environment, at: datetime) -> tuple[datetime, str] | None:
    """When no release window serving ``service`` in ``environment`` is open at ``at``: when the next one opens,
    and how that reads in the window's own zone. None when one is open, or when none will open."""
    windows = list(windows_for_environment(environment))
    if any(_serves(window, service) and window.occurrence_at(at) is not None for window in windows):
        return None
    upcoming = _next_opening(windows, service, at)
    if upcoming is None:
        return None
    occurrence, window = upcoming
    return occurrence.start, _local(occurrence.start, window)


def _window_reasons(
    services, environment, at, change, windows
) -> tuple[list[str], ReleaseWindow | None, Occurrence | None]:
    open_now = [(window, occurrence) for window in windows if (occurrence := window.occurrence_at(at)) is not None]
    reasons, chosen = [], None
    for service in services:
        serving = [(window, occurrence) for window, occurrence in open_now if _serves(window, service)]
        if not serving:
            upcoming = _next_opening(windows, service, at)
            hint = ""
            if upcoming:
                occurrence, window = upcoming
                hint = f"; next: {window.name} opens {_local(occurrence.start, window)}"
            reasons.append(f"no release window is open for {service.name} in {environment.name} at {_moment(at)}{hint}")
            continue
        if change is not None:
            fitting = [pair for pair in serving if pair[1].covers(change.planned_start, change.planned_end)]
            serving = fitting or serving
        if chosen is None:
            chosen = serving[0]
    if change is not None and chosen is not None:
        window, occurrence = chosen
        if not occurrence.covers(change.planned_start, change.planned_end):
            reasons.append(
                f"change {change.number}'s schedule ({_moment(change.planned_start)} to {_moment(change.planned_end)}) "
                f"does not fit in window {window.name} ({_local(occurrence.start, window)} to "
                f"{_local(occurrence.end, window)})"
            )
    return reasons, *(chosen or (None, None))


def deployment_permitted(
    services: Iterable,
    environment,
    at: datetime,
    *,
    change: ChangeRecord | None = None,
    override: FreezeOverride | None = None,
) -> Permission:
    """May ``services`` deploy to ``environment`` at ``at`` (under ``change``, with a freeze ``override``)?"""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("at must be an aware datetime")
    services = list(services)
    if not services:
        raise ValueError("name the services that deploy")
    reasons: list[str] = []
    notes: list[str] = []
    windows = list(windows_for_environment(environment))
    window = occurrence = None
    if environment.tier == EnvironmentTier.PRODUCTION or windows:
        if not windows:
            reasons.append(f"no release window is defined for {environment.name}")
        else:
            window_reasons, window, occurrence = _window_reasons(services, environment, at, change, windows)
            reasons += window_reasons
    if reasons and override is not None and override.lifts_windows(at=at, change=change):
        lifted = "; ".join(reasons)
        reasons = []
        notes.append(
            f"release windows overridden for {override.change.number} by {override.granted_by.get_username()} "
            f"at {_moment(override.granted_at)}: {override.reason} (lifted: {lifted})"
        )
    if change is not None and not change.covers(at):
        reasons.append(
            f"change {change.number}'s schedule ({_moment(change.planned_start)} to {_moment(change.planned_end)}) "
            f"does not cover {_moment(at)}"
        )
    freezes = list(freezes_at(services, environment, at))
    applied = override if notes else None
    for freeze in freezes:
        if override is not None and override.applies(at=at, change=change, freeze=freeze):
            applied = override
            notes.append(
                f"freeze {freeze.name} overridden for {override.change.number} by "
                f"{override.granted_by.get_username()} at {_moment(override.granted_at)}: {override.reason}"
            )
            continue
        reasons.append(
            f"inside freeze {freeze.name} ({_moment(freeze.start)} to {_moment(freeze.end)}): {freeze.reason}"
        )
    return Permission(
        permitted=not reasons,
        reasons=reasons,
        window=window,
        freezes=freezes,
        override=applied,
        notes=notes,
        occurrence=occurrence,
    )


def _suitable_change_types(release: Release) -> tuple[str, ...]:
    if release.release_type == ReleaseType.EMERGENCY:
        return (ChangeType.EMERGENCY,)
    return (ChangeType.NORMAL, ChangeType.STANDARD)


def production_deployment_eligible(
    release: Release,
    environment,
    at: datetime,
    *,
    change: ChangeRecord | None = None,
    override: FreezeOverride | None = None,
    checklist: Checklist | None = None,
) -> list[str]:
    """Every unmet condition for deploying ``release`` to ``environment`` (production) at ``at``; empty = go.

    ``checklist`` is the release's checklist for the environment's tier when the caller has evaluated it already.

    An approved change of the right type covering ``at`` (``change`` names one; otherwise any of the
    release's), the plan approved, the current package validated, every gate the policy requires for
    the tier, and the windows and freezes (``deployment_permitted``).
    """
    problems: list[str] = []
    if environment.tier != EnvironmentTier.PRODUCTION:
        problems.append(f"{environment.name} is a {environment.tier} environment, not production")
    kinds = _suitable_change_types(release)
    label = " or ".join(kinds)
    if change is not None:
        if change.release_id != release.pk:
            problems.append(f"change {change.number} is not a change of release {release}")
        if change.change_type not in kinds:
            problems.append(
                f"change {change.number} is {change.change_type}; {release.release_type} releases need {label}"
            )
        if change.state not in CHANGE_AUTHORISED_STATES:
            problems.append(f"change {change.number} is {change.get_state_display().lower()}, not approved")
        covering = change
    else:
        covering = (
            ChangeRecord.objects.filter(
                release=release,
                change_type__in=kinds,
                state__in=CHANGE_AUTHORISED_STATES,
                planned_start__lte=at,
                planned_end__gt=at,
            )
            .order_by("planned_start", "id")
            .first()
        )
        if covering is None:
            problems.append(f"no approved {label} change of release {release} covers {_moment(at)}")
    if release.state not in PLAN_APPROVED_STATES:
        problems.append(f"the release plan is not approved: the release is {release.get_state_display().lower()}")
    package = release_current_package(release)
    if package is None or package.state != PackageState.VALIDATED:
        state = f"build {package.version} is {package.state}" if package else "no package registered"
        problems.append(f"the current package is not validated ({state})")
    problems += (checklist or checklist_evaluate(release, environment.tier)).unmet_messages
    services = list(release.services.all())
    if services:
        permission = deployment_permitted(services, environment, at, change=covering, override=override)
        problems += permission.reasons
    else:
        problems.append("the release names no service")
    return list(dict.fromkeys(problems))
