"""Releases with their packages and units, change records, and the approvals of both."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection

from bench.scale_data.base import Copier, Releases, Year, as_json, path, weighted
from bench.scale_data.tables import (
    CHANGE_OF_RELEASE,
    CHANGE_STAGE_FIELDS,
    CHANGE_STAGE_HOURS,
    CHANGE_STAGES,
    OLD_CHANGE_STATES,
    OLD_RELEASE_STATES,
    RECENT,
    RECENT_CHANGE_STATES,
    RECENT_RELEASE_STATES,
    RELEASE_STAGE_FIELDS,
    RELEASE_STAGE_HOURS,
    RELEASE_STAGES,
    YEAR,
)
from rdm_site.roles import Role
from releases.choices import ChangeState, ChangeType, Decision, PackageState, ReleaseState, ReleaseType, Risk, UnitKind
from releases.models import (
    Approval,
    ChangeRecord,
    Release,
    ReleasePackage,
    ReleaseUnit,
)
from releases.models.change import CHANGE_NUMBER_SEQUENCE


def releases_generate(year: Year, copier: Copier) -> Releases:
    sizes, rng = year.sizes, year.rng
    old_state, recent_state = weighted(rng, OLD_RELEASE_STATES), weighted(rng, RECENT_RELEASE_STATES)
    kind = weighted(
        rng, {ReleaseType.MINOR: 50, ReleaseType.PATCH: 35, ReleaseType.MAJOR: 10, ReleaseType.EMERGENCY: 5}
    )
    managers, requesters = year.role_users[Role.RELEASE_MANAGER], year.role_users[Role.DEPLOYMENT_MANAGER]
    data = Releases([], [], [], [], [], [], [], [])
    running_services: set[int] = set()
    rows, service_rows, versions = [], [], {}
    for rid in range(1, sizes.releases + 1):
        created = year.start + YEAR * ((rid - rng.random()) / sizes.releases)
        service = year.services[rng.randrange(len(year.services))]
        state = recent_state() if year.now - created < RECENT else old_state()
        if state == ReleaseState.DEPLOYING:  # a few rollouts under way, each holding its service's lock
            if len(running_services) >= sizes.running_deployments or service in running_services:
                state = ReleaseState.READY
            else:
                running_services.add(service)
        if state == ReleaseState.CANCELLED:
            reached = rng.randint(0, 3)
        elif state in (ReleaseState.FAILED, ReleaseState.ROLLED_BACK):
            reached = rng.choice([4, 5])
        else:
            reached = RELEASE_STAGES[state]
        moments = dict(
            zip(RELEASE_STAGE_FIELDS, path(rng, created, RELEASE_STAGE_HOURS, reached, year.now), strict=False)
        )
        if state in (ReleaseState.CANCELLED, ReleaseState.FAILED, ReleaseState.ROLLED_BACK):
            last = max(moments.values(), default=created)
            moments["ended_at"] = last + (year.now - last) * rng.uniform(0.01, 0.05)
        versions[service] = versions.get(service, 0) + 1
        release_type = kind()
        planned_start = created + timedelta(days=rng.uniform(3, 20))
        requester, manager = requesters[rid % len(requesters)], managers[rid % len(managers)]
        version = f"{versions[service] // 20 + 1}.{versions[service] % 20}.0"
        rows.append(
            (
                rid,
                year.service_names[service],
                version,
                release_type,
                year.policies[release_type],
                planned_start,
                planned_start + timedelta(hours=rng.uniform(1, 8)),
                manager,
                requester,
                state,
                f"Release {rid} of {year.service_names[service]}.",
                created,
                max([created, *moments.values()]),
                *(moments.get(name) for name in RELEASE_STAGE_FIELDS),
                "Stopped." if "ended_at" in moments and state != ReleaseState.CLOSED else "",
            )
        )
        service_rows.append((rid, rid, service))
        data.created.append(created)
        data.state.append(state)
        data.moments.append(moments)
        data.service.append(service)
        data.version.append(version)
        data.requested_by.append(requester)
    copier.copy(
        Release,
        [
            "id",
            "name",
            "version",
            "release_type",
            "policy_id",
            "planned_start",
            "planned_end",
            "release_manager_id",
            "requested_by_id",
            "state",
            "description",
            "created",
            "updated",
            *RELEASE_STAGE_FIELDS,
            "end_reason",
        ],
        rows,
    )
    copier.copy(Release.services.through, ["id", "release_id", "service_id"], service_rows)
    _packages(year, copier, data)
    _units(year, copier, data)
    return data


def _packages(year: Year, copier: Copier, data: Releases) -> None:
    rng = year.rng
    builders, validators = year.role_users[Role.BUILD_ENGINEER], year.role_users[Role.DEPLOYMENT_MANAGER]
    rows, pid = [], 0
    for index, state in enumerate(data.state):
        rid, created, moments = index + 1, data.created[index], data.moments[index]
        submitted = moments.get("submitted_at")
        if submitted is None and (state == ReleaseState.DRAFT or rng.random() < 0.5):
            data.package.append(None)
            data.package_ready.append(None)
            continue
        built_at = created + ((submitted or year.now) - created) * rng.uniform(0.3, 0.9)
        builder = builders[rid % len(builders)]
        commit = {
            "sha": f"{rid:08x}{'0' * 32}",
            "message": f"Work for release {rid}",
            "author": "dev@rdm.example",
            "committed_at": (created - timedelta(days=2)).isoformat(),
        }
        if submitted is not None and rng.random() < 0.1:  # an earlier build this one replaced
            pid += 1
            rows.append(
                (
                    pid,
                    rid,
                    "rc1",
                    PackageState.SUPERSEDED,
                    builder,
                    "[]",
                    "[]",
                    None,
                    created,
                    created,
                    None,
                    None,
                    created + (built_at - created) / 2,
                )
            )
        pid += 1
        if submitted is None:
            package_state, validated = PackageState.ASSEMBLING, None
            built_at = None
        elif state == ReleaseState.REJECTED or moments.get("approved_at") is None:
            package_state, validated = PackageState.BUILT, None
        else:
            package_state, validated = PackageState.VALIDATED, (built_at + (submitted - built_at) / 2)
        rows.append(
            (
                pid,
                rid,
                "1",
                package_state,
                builder,
                as_json([commit]),
                as_json([f"WORK-{rid}"]),
                created - timedelta(days=2),
                created,
                built_at,
                validators[rid % len(validators)] if validated else None,
                validated,
                None,
            )
        )
        data.package.append(pid)
        data.package_ready.append(built_at)
    copier.copy(
        ReleasePackage,
        [
            "id",
            "release_id",
            "version",
            "state",
            "built_by_id",
            "commits",
            "work_items",
            "first_commit_at",
            "registered_at",
            "built_at",
            "validated_by_id",
            "validated_at",
            "superseded_at",
        ],
        rows,
    )


def _units(year: Year, copier: Copier, data: Releases) -> None:
    rows, links = [], []
    for index, service in enumerate(data.service):
        rid = index + 1
        cis = year.stacks.get((service, year.production)) or [1]
        for n, (kind, reversible) in enumerate(
            [(UnitKind.APPLICATION_ARTIFACT, True), (UnitKind.DATABASE_MIGRATION, rid % 5 != 0)]
        ):
            uid = 2 * index + n + 1
            rows.append((uid, rid, f"{kind.label} {n + 1}", kind, "1", reversible))
            links.append((uid, uid, cis[(rid + n) % len(cis)]))
    copier.copy(ReleaseUnit, ["id", "release_id", "name", "kind", "version", "reversible"], rows)
    copier.copy(ReleaseUnit.configuration_items.through, ["id", "releaseunit_id", "configurationitem_id"], links)


def changes_generate(year: Year, copier: Copier, releases: Releases) -> list[int | None]:
    """One normal (or emergency) change per release that was approved, then standard and standalone changes
    up to the total, ids rising with time. Returns each release's change id (or None)."""
    sizes, rng = year.sizes, year.rng
    old_state, recent_state = weighted(rng, OLD_CHANGE_STATES), weighted(rng, RECENT_CHANGE_STATES)
    requesters = year.role_users[Role.DEPLOYMENT_MANAGER]
    approvers = year.role_users[Role.CHANGE_APPROVER]
    pending = []  # (created, release index or None, service)
    for index, state in enumerate(releases.state):
        moments = releases.moments[index]
        if state in CHANGE_OF_RELEASE and moments.get("approved_at") is not None:
            created = moments["submitted_at"] - (moments["submitted_at"] - releases.created[index]) / 2
            pending.append((created, index, releases.service[index]))
    pending = pending[: sizes.changes]
    standalone = sizes.changes - len(pending)
    for n in range(standalone):
        created = year.start + YEAR * ((n + rng.random()) / standalone)
        pending.append((created, None, year.services[rng.randrange(len(year.services))]))
    pending.sort(key=lambda item: item[0])
    release_change: list[int | None] = [None] * len(releases.state)
    rows, service_rows, approvals = [], [], []
    for cid, (created, index, service) in enumerate(pending, start=1):
        if index is not None:
            release_change[index] = cid
            moments = releases.moments[index]
            state = CHANGE_OF_RELEASE[releases.state[index]]
            start = moments.get("deployment_started_at") or moments["approved_at"] + timedelta(days=2)
            change_type = ChangeType.EMERGENCY if rng.random() < 0.05 else ChangeType.NORMAL
            stages = path(rng, created, CHANGE_STAGE_HOURS[:3], 3, moments["approved_at"])
            if CHANGE_STAGES[state] >= 4:
                stages.append(start)
            if CHANGE_STAGES[state] >= 5:
                stages.append(moments.get("deployed_at") or moments.get("ended_at") or start + timedelta(hours=2))
            if CHANGE_STAGES[state] >= 6:
                stages += path(rng, stages[-1], CHANGE_STAGE_HOURS[5:], 2, year.now)
        else:
            state = recent_state() if year.now - created < RECENT else old_state()
            change_type = ChangeType.STANDARD if rng.random() < 0.6 else ChangeType.NORMAL
            stages = path(rng, created, CHANGE_STAGE_HOURS, CHANGE_STAGES[state], year.now)
            start = stages[3] if len(stages) > 3 else created + timedelta(days=rng.uniform(1, 10))
        moments = dict(zip(CHANGE_STAGE_FIELDS, stages, strict=False))
        requester = requesters[cid % len(requesters)]
        rows.append(
            (
                cid,
                f"CHG-{cid:04d}",
                change_type,
                year.templates[service] if change_type == "standard" else None,
                f"Change {cid}: {year.service_names[service]}",
                Risk.MEDIUM,
                start,
                start + timedelta(hours=rng.uniform(1, 6)),
                requester,
                None if index is None else index + 1,
                state,
                created,
                *(moments.get(name) for name in CHANGE_STAGE_FIELDS),
            )
        )
        service_rows.append((cid, cid, service))
        decided = moments.get("decided_at")
        if decided is not None and change_type != ChangeType.STANDARD:
            decision = Decision.REJECTED if state == ChangeState.REJECTED else Decision.APPROVED
            approvals.append(
                (None, cid, approvers[cid % len(approvers)], decision, Role.CHANGE_APPROVER.value, decided)
            )
    copier.copy(
        ChangeRecord,
        [
            "id",
            "number",
            "change_type",
            "template_id",
            "title",
            "risk",
            "planned_start",
            "planned_end",
            "requested_by_id",
            "release_id",
            "state",
            "created",
            *CHANGE_STAGE_FIELDS,
        ],
        rows,
    )
    copier.copy(ChangeRecord.services.through, ["id", "changerecord_id", "service_id"], service_rows)
    managers = year.role_users[Role.RELEASE_MANAGER]
    for index, state in enumerate(releases.state):
        decided = releases.moments[index].get("approved_at")
        if state == ReleaseState.REJECTED:
            decided = min(year.now, releases.moments[index]["submitted_at"] + timedelta(hours=2))
        if decided is not None:
            decision = Decision.REJECTED if state == ReleaseState.REJECTED else Decision.APPROVED
            approver = managers[(index + 1) % len(managers)]
            approvals.append((index + 1, None, approver, decision, Role.RELEASE_MANAGER.value, decided))
    approvals.sort(key=lambda row: row[-1])
    copier.copy(
        Approval,
        ["id", "release_id", "change_id", "approver_id", "decision", "role", "decided_at"],
        ((n, *row) for n, row in enumerate(approvals, start=1)),
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval(%s, %s)", [CHANGE_NUMBER_SEQUENCE, len(rows)])
    return release_change
