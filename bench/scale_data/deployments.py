"""Deployments with their waves, steps, step logs and early life support; incidents."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from bench.scale_data.base import Copier, Releases, Year, path, weighted
from bench.scale_data.tables import (
    DEPLOYMENT_OF_RELEASE,
    INCIDENT_SEVERITIES,
    OTHER_DEPLOYMENT_STATES,
    STEP_NAMES,
    YEAR,
)
from deployments.choices import (
    DEPLOYMENT_ACTIVE_STATES,
    DeploymentModel,
    DeploymentState,
    ElsState,
    IncidentState,
    LogLevel,
    StepState,
    WaveState,
)
from deployments.models import (
    Deployment,
    DeploymentLock,
    EarlyLifeSupport,
    Incident,
    Step,
    StepLog,
    Wave,
)
from rdm_site.roles import Role


def deployments_generate(year: Year, copier: Copier, releases: Releases, release_change: list[int | None]) -> None:
    sizes, rng = year.sizes, year.rng
    operators = year.role_users[Role.DEPLOYMENT_MANAGER]
    other_state = weighted(rng, OTHER_DEPLOYMENT_STATES)
    model = weighted(rng, {DeploymentModel.BIG_BANG: 6, DeploymentModel.PHASED: 3, DeploymentModel.PARALLEL: 1})
    planned = []  # (created, started, finished, state, release index, environment)
    for index, state in enumerate(releases.state):
        moments = releases.moments[index]
        started = moments.get("deployment_started_at")
        if state in DEPLOYMENT_OF_RELEASE and started is not None and releases.package[index] is not None:
            finished = moments.get("deployed_at") or moments.get("ended_at")
            planned.append(
                (
                    started - timedelta(minutes=5),
                    started,
                    finished,
                    DEPLOYMENT_OF_RELEASE[state],
                    index,
                    year.production,
                )
            )
    planned = planned[: sizes.deployments]
    built = [index for index, ready in enumerate(releases.package_ready) if ready is not None]
    for _ in range(sizes.deployments - len(planned)):  # to the lower environments, before production
        index = rng.choice(built)
        ready, moments = releases.package_ready[index], releases.moments[index]
        until = moments.get("deployment_started_at") or moments.get("ended_at") or year.now
        started = ready + (until - ready) * rng.uniform(0.05, 0.9)
        finished = started + timedelta(minutes=rng.uniform(2, 90))
        planned.append(
            (
                started - timedelta(minutes=2),
                started,
                min(finished, year.now),
                other_state(),
                index,
                year.environments[rng.randrange(len(year.environments) - 1)],
            )
        )
    planned.sort(key=lambda item: item[0])
    big = next(
        (n for n, item in enumerate(planned) if item[3] == DeploymentState.SUCCEEDED and item[5] == year.production),
        0,
    )
    step_counts = _step_counts(year, len(planned), big)
    deployment_rows, wave_rows, locks = [], [], []
    wave_id = 0
    for did, (created, started, finished, state, index, environment) in enumerate(planned, start=1):
        service = releases.service[index]
        active = state in DEPLOYMENT_ACTIVE_STATES
        finished = None if active else finished or started + timedelta(minutes=30)
        deployment_model = DeploymentModel.PHASED if did - 1 == big else model()
        outcome = "" if active else {DeploymentState.SUCCEEDED: "All steps succeeded."}.get(state, "Stopped.")
        deployment_rows.append(
            (
                did,
                service,
                environment,
                year.processes[service],
                releases.package[index],
                release_change[index] if environment == year.production else None,
                releases.version[index],
                deployment_model,
                state,
                operators[did % len(operators)],
                started,
                finished,
                outcome,
                created,
                finished or started,
            )
        )
        if active:
            locks.append((len(locks) + 1, service, environment, did, started))
        waves = 10 if did - 1 == big else 2 if deployment_model == DeploymentModel.PHASED else 1
        waves = min(waves, step_counts[did - 1])
        per_wave = [step_counts[did - 1] // waves + (w < step_counts[did - 1] % waves) for w in range(waves)]
        mine = []
        for w, count in enumerate(per_wave):
            wave_id += 1
            wave_state = _wave_state(state, w, waves)
            wave_rows.append(
                (
                    wave_id,
                    did,
                    w,
                    f"Wave {w + 1}",
                    count,
                    wave_state,
                    started if wave_state != WaveState.PENDING else None,
                    finished if wave_state in (WaveState.PASSED, WaveState.FAILED) else None,
                )
            )
            mine.append((wave_id, count))
        year.deployment_waves.append(mine)
    year.big_deployment = big + 1
    copier.copy(
        Deployment,
        [
            "id",
            "service_id",
            "environment_id",
            "process_id",
            "package_id",
            "change_id",
            "version",
            "model",
            "state",
            "requested_by_id",
            "started_at",
            "finished_at",
            "outcome",
            "created",
            "updated",
        ],
        deployment_rows,
    )
    copier.copy(DeploymentLock, ["id", "service_id", "environment_id", "deployment_id", "taken_at"], locks)
    copier.copy(
        Wave,
        ["id", "deployment_id", "index", "name", "target_count", "state", "started_at", "finished_at"],
        wave_rows,
    )
    _els(year, copier, releases, planned)
    copier.copy(
        Step,
        [
            "id",
            "deployment_id",
            "wave_id",
            "target_id",
            "position",
            "name",
            "executor",
            "state",
            "attempt",
            "started_at",
            "finished_at",
            "idempotency_key",
            "message",
        ],
        _steps(year, planned, releases),
    )
    copier.copy(
        StepLog,
        ["id", "step_id", "at", "level", "message"],
        _step_logs(
            year,
        ),
    )
    year.report(f"  the deployment with {sizes.big_deployment_steps} steps: #{year.big_deployment}")


def _step_counts(year: Year, deployments: int, big: int) -> list[int]:
    """Steps per deployment: the big one's count, the rest spread evenly with some spread around it."""
    rest = year.sizes.steps - year.sizes.big_deployment_steps
    base, extra = divmod(rest, deployments - 1)
    counts = [base + (n < extra) for n in range(deployments - 1)]
    for n in range(0, len(counts) - 1, 2):
        shift = year.rng.randint(0, min(counts[n], counts[n + 1]) - 1)
        counts[n] -= shift
        counts[n + 1] += shift
    counts.insert(big, year.sizes.big_deployment_steps)
    return counts


def _wave_state(state: str, wave: int, waves: int) -> str:
    last = wave == waves - 1
    if state == DeploymentState.SUCCEEDED:
        return WaveState.PASSED
    if state == DeploymentState.RUNNING:
        return WaveState.RUNNING if wave == 0 else WaveState.PENDING
    if state in (DeploymentState.FAILED, DeploymentState.ROLLED_BACK):
        return WaveState.FAILED if last else WaveState.PASSED
    return WaveState.PASSED if not last else WaveState.PENDING  # aborted before its last wave


def _steps(year: Year, planned: list, releases: Releases) -> Iterable[tuple]:
    sid = 0
    for did, (_, started, finished, state, index, environment) in enumerate(planned, start=1):
        targets = year.targets.get((releases.service[index], environment)) or [None]
        waves = year.deployment_waves[did - 1]
        total = sum(count for _, count in waves)
        end = finished or year.now
        position = 0
        for wave_id, count in waves:
            for _ in range(count):
                sid += 1
                step_state = _step_state(state, position, total)
                at = started + (end - started) * (position / total)
                done = step_state in (StepState.SUCCEEDED, StepState.FAILED)
                year.step_times.append(at)
                yield (
                    sid,
                    did,
                    wave_id,
                    targets[position % len(targets)],
                    position,
                    STEP_NAMES[position % len(STEP_NAMES)],
                    "simulator",
                    step_state,
                    int(done),
                    at if step_state != StepState.PENDING and step_state != StepState.SKIPPED else None,
                    at + (end - started) / (total + 1) if done else None,
                    f"scale-{sid}",
                    "" if not done else "ok" if step_state == StepState.SUCCEEDED else "exit status 1",
                )
                position += 1


def _step_state(state: str, position: int, total: int) -> str:
    if state == DeploymentState.SUCCEEDED:
        return StepState.SUCCEEDED
    failing = total - 1 if total < 3 else total * 2 // 3
    if state == DeploymentState.RUNNING:
        return StepState.SUCCEEDED if position < total // 2 else StepState.PENDING
    if state in (DeploymentState.FAILED, DeploymentState.ROLLED_BACK):
        return (
            StepState.SUCCEEDED
            if position < failing
            else StepState.FAILED
            if position == failing
            else (StepState.SKIPPED)
        )
    return StepState.SUCCEEDED if position < failing else StepState.SKIPPED  # aborted


def _step_logs(year: Year) -> Iterable[tuple]:
    steps, logs = len(year.step_times), year.sizes.step_logs
    base, extra = divmod(logs, steps)
    lid = 0
    for sid, at in enumerate(year.step_times, start=1):
        for line in range(base + (sid <= extra)):
            lid += 1
            level = LogLevel.INFO if line else LogLevel.DEBUG
            yield (lid, sid, at + timedelta(milliseconds=150 * line), level, f"step {sid}: line {line + 1}")


def _els(year: Year, copier: Copier, releases: Releases, planned: list) -> None:
    rows = []
    for did, (_, _, _, _, index, environment) in enumerate(planned, start=1):
        started = releases.moments[index].get("els_started_at")
        if environment != year.production or started is None:
            continue
        exited = releases.moments[index].get("review_started_at")
        state = ElsState.EXITED if exited else ElsState.ACTIVE
        rows.append(
            (
                len(rows) + 1,
                did,
                index + 1,
                state,
                "{}",
                started,
                started + timedelta(days=7),
                exited,
                started,
                exited or started,
            )
        )
    copier.copy(
        EarlyLifeSupport,
        [
            "id",
            "deployment_id",
            "release_id",
            "state",
            "exit_criteria",
            "started_at",
            "planned_end",
            "exited_at",
            "created",
            "updated",
        ],
        rows,
    )


def incidents_generate(year: Year, copier: Copier) -> None:
    sizes, rng = year.sizes, year.rng
    severity = weighted(rng, INCIDENT_SEVERITIES)
    reporters = year.role_users[Role.SERVICE_OWNER]
    rows = []
    deployments = len(year.deployment_waves)
    for iid in range(1, sizes.incidents + 1):
        opened = year.start + YEAR * ((iid - rng.random()) / sizes.incidents)
        age = year.now - opened
        if age > timedelta(days=14):
            state = IncidentState.CLOSED if rng.random() < 0.9 else IncidentState.RESOLVED
        else:
            state = rng.choice(list(IncidentState))
        reached = {IncidentState.OPEN: 0, IncidentState.ACKNOWLEDGED: 1, IncidentState.RESOLVED: 2}.get(state, 3)
        acknowledged, resolved, closed = [
            *path(rng, opened, [(0, 2), (1, 48), (24, 96)], reached, year.now),
            None,
            None,
            None,
        ][:3]
        where = iid % 5
        deployment = min(deployments, max(1, round(deployments * iid / sizes.incidents))) if where < 2 else None
        ci = rng.randint(1, sizes.cis) if where in (2, 3) else None
        release = min(sizes.releases, max(1, round(sizes.releases * iid / sizes.incidents))) if where == 4 else None
        alert = iid % 2 == 0
        rows.append(
            (
                iid,
                f"Incident {iid}: errors above threshold",
                severity(),
                state,
                deployment,
                release,
                ci,
                "explicit" if deployment else "",
                "alertmanager" if alert else "",
                f"fp-{iid}" if alert else "",
                None if alert else reporters[iid % len(reporters)],
                opened,
                acknowledged,
                resolved,
                closed,
                closed or resolved or acknowledged or opened,
            )
        )
    copier.copy(
        Incident,
        [
            "id",
            "title",
            "severity",
            "state",
            "deployment_id",
            "release_id",
            "ci_id",
            "correlation",
            "source",
            "external_id",
            "opened_by_id",
            "opened_at",
            "acknowledged_at",
            "resolved_at",
            "closed_at",
            "updated",
        ],
        rows,
    )
