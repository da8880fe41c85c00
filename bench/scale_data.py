"""A year of a large organisation, written into an empty, migrated database for scale measurements.

``scale_generate`` (the management command) calls ``scale_generate``. Small tables (users, environments,
services, policies, processes) go through the ORM; every large table is written with PostgreSQL COPY,
with explicit ids so that foreign keys are known without reading anything back. Everything happens in one
transaction with the constraints checked row by row (``SET CONSTRAINTS ALL IMMEDIATE``): a run either
leaves a complete, consistent year or nothing. Times rise with ids in every table, and each record's
timestamps follow its lifecycle (created < submitted < approved < started < finished). The audit trail
is a valid hash chain, hashed by ``AuditEvent.compute_hash`` itself.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, User
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.text import slugify

from cmdb.choices import CiState, CiType, Criticality, EnvironmentTier, RelationshipKind
from cmdb.models import ConfigurationItem, Environment, Relationship, Service
from deployments.choices import (
    DEPLOYMENT_ACTIVE_STATES,
    DeploymentModel,
    DeploymentState,
    ElsState,
    IncidentSeverity,
    IncidentState,
    LogLevel,
    StepState,
    WaveState,
)
from deployments.models import (
    Deployment,
    DeploymentLock,
    DeploymentProcess,
    EarlyLifeSupport,
    Incident,
    Step,
    StepLog,
    StepTemplate,
    Target,
    Wave,
)
from rdm_site.demo import DEMO_ADMIN, DEMO_PASSWORD, DEMO_USERS
from rdm_site.models import GENESIS_HASH, AuditEvent
from rdm_site.roles import Role
from releases.choices import ChangeState, ChangeType, Decision, PackageState, ReleaseState, ReleaseType, Risk, UnitKind
from releases.models import (
    Approval,
    ChangeRecord,
    ChangeTemplate,
    Release,
    ReleasePackage,
    ReleasePolicy,
    ReleaseUnit,
)
from releases.models.change import CHANGE_NUMBER_SEQUENCE

YEAR = timedelta(days=365)
STACK_SIZE = 50  # CIs of one service in one environment, linked among themselves
RECENT = timedelta(days=40)  # releases younger than this may still be open
GENERATED_PREFIX = "scale"  # usernames of generated users: scale.<role>.<n>


@dataclass(frozen=True)
class ScaleSizes:
    """How much of everything to make; the defaults are a large organisation after one year."""

    services: int = 200
    cis: int = 100_000
    relationships: int = 300_000
    hub_downstream: int = 10_000
    releases: int = 100_000
    changes: int = 100_000
    deployments: int = 200_000
    steps: int = 1_000_000
    step_logs: int = 2_000_000
    big_deployment_steps: int = 1_000
    running_deployments: int = 5
    incidents: int = 20_000
    audit_events: int = 2_000_000
    users_per_role: int = 25

    def scaled(self, factor: float) -> ScaleSizes:
        """Every size times ``factor``, each kept large enough for the year to hang together."""
        minimums = {"services": 4, "cis": 2 * STACK_SIZE, "users_per_role": 2, "running_deployments": 1}
        values = {
            field.name: max(minimums.get(field.name, 2), math.ceil(getattr(self, field.name) * factor))
            for field in dataclasses.fields(self)
        }
        values["running_deployments"] = min(self.running_deployments, values["running_deployments"])
        return ScaleSizes(**values).checked()

    def checked(self) -> ScaleSizes:
        problems = []
        if self.hub_downstream >= self.cis // 2:
            problems.append("hub_downstream must stay below half of the CIs")
        if self.relationships < self.hub_downstream:
            problems.append("relationships must cover the hub's downstream tree")
        if self.steps < self.deployments + self.big_deployment_steps:
            problems.append("steps must give every deployment at least one step, plus the big deployment's")
        if self.step_logs < self.steps:
            problems.append("step_logs must give every step at least one log line")
        if self.running_deployments > self.services:
            problems.append("running_deployments cannot exceed services (one lock per service and environment)")
        if problems:
            raise ValueError("; ".join(problems))
        return self


# fmt: off
ENVIRONMENTS = [  # name, tier
    ("dev", EnvironmentTier.DEVELOPMENT), ("test", EnvironmentTier.TEST), ("qa", EnvironmentTier.TEST),
    ("staging", EnvironmentTier.STAGING), ("preprod", EnvironmentTier.STAGING),
    ("production", EnvironmentTier.PRODUCTION),
]
DOMAINS = ["Payments", "Orders", "Catalog", "Checkout", "Identity", "Search", "Billing", "Shipping", "Inventory",
           "Pricing", "Loyalty", "Reviews", "Messaging", "Reporting", "Ledger", "Fraud", "Support", "Content",
           "Partners", "Mobile"]
FUNCTIONS = ["API", "Web", "Worker", "Gateway", "Portal", "Engine", "Feed", "Sync", "Store", "Hub"]
CI_LAYOUT = [CiType.CLUSTER, CiType.NETWORK, CiType.LOAD_BALANCER, CiType.STORAGE, CiType.DATABASE, CiType.DATABASE]
RELATIONSHIP_KINDS = [RelationshipKind.DEPENDS_ON] * 5 + [RelationshipKind.RUNS_ON] * 3 + [
    RelationshipKind.PART_OF, RelationshipKind.CONNECTS_TO]
STEP_NAMES = ["Fetch artifact", "Drain node", "Stop service", "Install package", "Migrate schema", "Start service",
              "Smoke test", "Enable traffic", "Health check", "Notify"]

# Release states by age: old releases have run their course, recent ones are anywhere in it.
OLD_RELEASE_STATES = {
    ReleaseState.CLOSED: 86, ReleaseState.CANCELLED: 5, ReleaseState.FAILED: 3, ReleaseState.ROLLED_BACK: 3,
    ReleaseState.REJECTED: 2, ReleaseState.IN_REVIEW: 1,
}
RECENT_RELEASE_STATES = {
    ReleaseState.DRAFT: 10, ReleaseState.PLANNED: 12, ReleaseState.SUBMITTED: 12, ReleaseState.APPROVED: 8,
    ReleaseState.READY: 8, ReleaseState.DEPLOYING: 2, ReleaseState.DEPLOYED: 6, ReleaseState.EARLY_LIFE_SUPPORT: 12,
    ReleaseState.IN_REVIEW: 8, ReleaseState.CLOSED: 14, ReleaseState.CANCELLED: 4, ReleaseState.REJECTED: 2,
    ReleaseState.FAILED: 1, ReleaseState.ROLLED_BACK: 1,
}
# How far along the path submitted → approved → ready → deploying → deployed → ELS → review → ended each got.
RELEASE_STAGE_FIELDS = ["submitted_at", "approved_at", "ready_at", "deployment_started_at", "deployed_at",
                        "els_started_at", "review_started_at", "ended_at"]
RELEASE_STAGES = {
    ReleaseState.DRAFT: 0, ReleaseState.PLANNED: 0, ReleaseState.SUBMITTED: 1, ReleaseState.REJECTED: 1,
    ReleaseState.APPROVED: 2, ReleaseState.READY: 3, ReleaseState.DEPLOYING: 4, ReleaseState.DEPLOYED: 5,
    ReleaseState.EARLY_LIFE_SUPPORT: 6, ReleaseState.IN_REVIEW: 7, ReleaseState.CLOSED: 8,
}
RELEASE_STAGE_HOURS = [(24, 120), (12, 72), (24, 72), (24, 120), (1, 6), (1, 2), (168, 336), (48, 240)]
# The production deployment and change that follow a release which reached them.
DEPLOYMENT_OF_RELEASE = {
    ReleaseState.DEPLOYING: DeploymentState.RUNNING, ReleaseState.DEPLOYED: DeploymentState.SUCCEEDED,
    ReleaseState.EARLY_LIFE_SUPPORT: DeploymentState.SUCCEEDED, ReleaseState.IN_REVIEW: DeploymentState.SUCCEEDED,
    ReleaseState.CLOSED: DeploymentState.SUCCEEDED, ReleaseState.FAILED: DeploymentState.FAILED,
    ReleaseState.ROLLED_BACK: DeploymentState.ROLLED_BACK,
}
CHANGE_OF_RELEASE = {
    ReleaseState.APPROVED: ChangeState.APPROVED, ReleaseState.READY: ChangeState.SCHEDULED,
    ReleaseState.DEPLOYING: ChangeState.IMPLEMENTING, ReleaseState.DEPLOYED: ChangeState.IMPLEMENTED,
    ReleaseState.EARLY_LIFE_SUPPORT: ChangeState.IMPLEMENTED, ReleaseState.IN_REVIEW: ChangeState.IMPLEMENTED,
    ReleaseState.CLOSED: ChangeState.CLOSED, ReleaseState.FAILED: ChangeState.FAILED,
    ReleaseState.ROLLED_BACK: ChangeState.BACKED_OUT,
}
OLD_CHANGE_STATES = {ChangeState.CLOSED: 85, ChangeState.REJECTED: 5, ChangeState.FAILED: 4,
                     ChangeState.BACKED_OUT: 3, ChangeState.REVIEWED: 3}
RECENT_CHANGE_STATES = {
    ChangeState.DRAFT: 10, ChangeState.SUBMITTED: 12, ChangeState.ASSESSED: 8, ChangeState.APPROVED: 10,
    ChangeState.REJECTED: 4, ChangeState.SCHEDULED: 10, ChangeState.IMPLEMENTED: 16, ChangeState.FAILED: 2,
    ChangeState.BACKED_OUT: 2, ChangeState.REVIEWED: 6, ChangeState.CLOSED: 20,
}
# submitted → assessed → decided → started → ended → reviewed → closed
CHANGE_STAGE_FIELDS = ["submitted_at", "assessed_at", "decided_at", "started_at", "ended_at", "reviewed_at",
                       "closed_at"]
CHANGE_STAGES = {
    ChangeState.DRAFT: 0, ChangeState.SUBMITTED: 1, ChangeState.ASSESSED: 2, ChangeState.APPROVED: 3,
    ChangeState.REJECTED: 3, ChangeState.SCHEDULED: 3, ChangeState.IMPLEMENTING: 4, ChangeState.IMPLEMENTED: 5,
    ChangeState.FAILED: 5, ChangeState.BACKED_OUT: 5, ChangeState.REVIEWED: 6, ChangeState.CLOSED: 7,
}
CHANGE_STAGE_HOURS = [(1, 48), (4, 72), (4, 48), (24, 240), (1, 6), (24, 120), (1, 48)]
OTHER_DEPLOYMENT_STATES = {DeploymentState.SUCCEEDED: 88, DeploymentState.FAILED: 6, DeploymentState.ROLLED_BACK: 3,
                           DeploymentState.ABORTED: 3}
INCIDENT_SEVERITIES = {IncidentSeverity.P1: 3, IncidentSeverity.P2: 12, IncidentSeverity.P3: 45,
                       IncidentSeverity.P4: 40}
# What the audit trail tells of each kind of record: (action, from state, to state).
AUDIT_STORIES = {
    "releases.release": [
        ("release.plan", "draft", "planned"), ("release.submit", "planned", "submitted"),
        ("release.approve", "submitted", "approved"), ("release.mark_ready", "approved", "ready"),
        ("release.start_deploying", "ready", "deploying"), ("release.mark_deployed", "deploying", "deployed"),
        ("release.start_els", "deployed", "early_life_support"),
        ("release.start_review", "early_life_support", "in_review"), ("release.close", "in_review", "closed")],
    "releases.changerecord": [
        ("change.submit", "draft", "submitted"), ("change.assess", "submitted", "assessed"),
        ("change.approve", "assessed", "approved"), ("change.schedule", "approved", "scheduled"),
        ("change.start", "scheduled", "implementing"), ("change.mark_implemented", "implementing", "implemented"),
        ("change.close", "implemented", "closed")],
    "deployments.deployment": [
        ("deployment.start", "planned", "queued"), ("deployment.run", "queued", "running"),
        ("deployment.succeed", "running", "succeeded")],
    "deployments.incident": [
        ("incident.acknowledge", "open", "acknowledged"), ("incident.resolve", "acknowledged", "resolved"),
        ("incident.close", "resolved", "closed")],
    "cmdb.configurationitem": [
        ("ci.update", "", ""), ("ci.start_maintenance", "live", "maintenance"),
        ("ci.end_maintenance", "maintenance", "live")],
}
AUDIT_SHARES = {"releases.release": 30, "releases.changerecord": 25, "deployments.deployment": 25,
                "deployments.incident": 10, "cmdb.configurationitem": 10}
# The roles whose members act on each kind of record in the audit trail.
AUDIT_ROLES = {"releases.release": Role.RELEASE_MANAGER, "releases.changerecord": Role.CHANGE_APPROVER,
               "deployments.deployment": Role.DEPLOYMENT_MANAGER, "deployments.incident": Role.SERVICE_OWNER,
               "cmdb.configurationitem": Role.BUILD_ENGINEER}
# fmt: on


class DatabaseNotEmpty(Exception):
    """The scale data is only ever written into an empty database, so nothing of value is mixed with it."""


def _weighted(rng: random.Random, weights: dict) -> Callable[[], str]:
    choices, cumulative = list(weights), list(itertools.accumulate(weights.values()))
    return lambda: rng.choices(choices, cum_weights=cumulative)[0]


def _path(rng: random.Random, start: datetime, hours: Sequence[tuple[int, int]], reached: int, end: datetime):
    """The first ``reached`` moments after ``start``, spaced by ``hours`` ranges, squeezed to end before ``end``."""
    steps = [timedelta(hours=rng.uniform(low, high)) for low, high in hours[:reached]]
    total = sum(steps, timedelta())
    room = (end - start) * 0.95
    if total > room:
        steps = [step * (room / total) for step in steps]
    moments, moment = [], start
    for step in steps:
        moment += step + timedelta(microseconds=1)  # strictly rising, however much it was squeezed
        moments.append(moment)
    return moments


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"))


class _Copier:
    """Writes rows with COPY, naming the columns given and filling every other NOT NULL column with its default."""

    def __init__(self, cursor, report: Callable[[str], None]):
        self.cursor = cursor
        self.report = report
        self.counts: dict[str, int] = {}

    def copy(self, model: type[models.Model], columns: Sequence[str], rows: Iterable[tuple]) -> int:
        fields = [field for field in model._meta.concrete_fields if not getattr(field, "generated", False)]
        given = set(columns)
        unknown = given - {field.attname for field in fields}
        if unknown:
            raise ValueError(f"{model._meta.label} has no columns {sorted(unknown)}")
        by_attname = {field.attname: field for field in fields}
        rest = [field for field in fields if field.attname not in given and not field.null]
        defaults = tuple(self._default(model, field) for field in rest)
        names = ", ".join(connection.ops.quote_name(field.column) for field in [*map(by_attname.get, columns), *rest])
        started, count = time.monotonic(), 0
        with self.cursor.copy(f"COPY {connection.ops.quote_name(model._meta.db_table)} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row + defaults if defaults else row)
                count += 1
        table = model._meta.db_table
        self.counts[table] = self.counts.get(table, 0) + count
        self.report(f"  {table:<45} {count:>10,} rows  {time.monotonic() - started:7.1f} s")
        return count

    @staticmethod
    def _default(model: type[models.Model], field: models.Field):
        value = field.get_default()
        if value is None:
            raise ValueError(f"{model._meta.label}.{field.name} needs a value: it has no default")
        return _json(value) if isinstance(field, models.JSONField) else value


@dataclass
class _Releases:
    """What later tables need to know of the releases, indexed by release id - 1."""

    created: list[datetime]
    state: list[str]
    moments: list[dict[str, datetime]]
    service: list[int]
    version: list[str]
    requested_by: list[int]
    package: list[int | None]  # the current package's id
    package_ready: list[datetime | None]  # when the current package was built


class _Generator:
    def __init__(self, sizes: ScaleSizes, *, seed: int, now: datetime, report: Callable[[str], None]):
        self.sizes = sizes
        self.rng = random.Random(seed)
        self.now = now
        self.start = now - YEAR
        self.report = report

    # --- people, places and policies (ORM) ------------------------------------------------------------------

    def users(self) -> None:
        """The demo's users (same names, roles and password), then ``users_per_role`` more for every role.

        Written in bulk, so no audit event is recorded for them: the audit trail is the generated year alone.
        """
        groups = {group.name: group for group in Group.objects.filter(name__in=Role.values)}
        password = make_password(DEMO_PASSWORD)  # hashed once: every generated user signs in with it
        users, memberships = [], []
        for username, full_name, roles in DEMO_USERS:
            first_name, _, last_name = full_name.partition(" ")
            users.append(
                User(
                    username=username,
                    password=password,
                    is_staff=True,
                    first_name=first_name,
                    last_name=last_name,
                    email=f"{username}@rdm.example",
                )
            )
            memberships += [(username, groups[role.value]) for role in roles]
        users.append(
            User(
                username=DEMO_ADMIN,
                password=password,
                is_staff=True,
                is_superuser=True,
                first_name="Ada",
                email=f"{DEMO_ADMIN}@rdm.example",
            )
        )
        for role in Role:
            for n in range(1, self.sizes.users_per_role + 1):
                username = f"{GENERATED_PREFIX}.{slugify(role.value).replace('-', '')}.{n:03}"
                users.append(
                    User(
                        username=username,
                        password=password,
                        is_staff=True,
                        first_name=role.label,
                        last_name=f"{n:03}",
                        email=f"{username}@rdm.example",
                    )
                )
                memberships.append((username, groups[role.value]))
        ids = {user.username: user.pk for user in User.objects.bulk_create(users)}
        through = User.groups.through
        through.objects.bulk_create(
            through(user_id=ids[username], group_id=group.pk) for username, group in memberships
        )
        self.role_users = {
            role: list(User.objects.filter(groups__name=role.value).order_by("pk").values_list("pk", flat=True))
            for role in Role
        }
        self.usernames = dict(User.objects.values_list("pk", "username"))
        self.report(f"  users: {User.objects.count()} (every generated one signs in with the demo password)")

    def places(self) -> None:
        self.environments = [
            Environment.objects.create(name=name, slug=name, tier=tier, promotion_order=order).pk
            for order, (name, tier) in enumerate(ENVIRONMENTS, start=1)
        ]
        self.production = self.environments[-1]
        owners = self.role_users[Role.SERVICE_OWNER]
        criticality = _weighted(
            self.rng, {Criticality.LOW: 2, Criticality.MEDIUM: 5, Criticality.HIGH: 2, Criticality.CRITICAL: 1}
        )
        services = []
        for i in range(self.sizes.services):
            name = f"{DOMAINS[i % len(DOMAINS)]} {FUNCTIONS[(i // len(DOMAINS)) % len(FUNCTIONS)]}"
            if i >= len(DOMAINS) * len(FUNCTIONS):
                name += f" {i // (len(DOMAINS) * len(FUNCTIONS)) + 1}"
            services.append(
                Service(
                    name=name,
                    slug=slugify(name),
                    owner_id=owners[i % len(owners)],
                    criticality=criticality(),
                    description=f"The {name} business service.",
                )
            )
        self.services = [service.pk for service in Service.objects.bulk_create(services)]
        self.service_names = {service.pk: service.name for service in services}
        stakeholders = Service.stakeholders.through
        viewers = self.role_users[Role.VIEWER]
        stakeholders.objects.bulk_create(
            stakeholders(service_id=pk, user_id=viewers[(n + k) % len(viewers)])
            for n, pk in enumerate(self.services)
            for k in range(2)
        )
        policies = [
            ReleasePolicy(
                name=f"{kind.label} release",
                release_type=kind,
                approvals_required=1,
                lead_time_days=0 if kind == ReleaseType.EMERGENCY else 3,
            )
            for kind in ReleaseType
        ]
        self.policies = {policy.release_type: policy.pk for policy in ReleasePolicy.objects.bulk_create(policies)}
        managers = self.role_users[Role.RELEASE_MANAGER]
        templates = ChangeTemplate.objects.bulk_create(
            ChangeTemplate(
                name=f"Routine deployment of {self.service_names[pk]}",
                description="Pre-approved.",
                risk=Risk.LOW,
                created_by_id=managers[0],
                approved_by_id=managers[-1],
                approved_at=self.start,
            )
            for pk in self.services
        )
        through = ChangeTemplate.services.through
        through.objects.bulk_create(
            through(changetemplate_id=template.pk, service_id=pk)
            for template, pk in zip(templates, self.services, strict=False)
        )
        self.templates = {pk: template.pk for template, pk in zip(templates, self.services, strict=False)}
        processes = DeploymentProcess.objects.bulk_create(
            DeploymentProcess(service_id=pk, name="Standard rollout", description="Fetch, install, verify.")
            for pk in self.services
        )
        self.processes = {process.service_id: process.pk for process in processes}
        StepTemplate.objects.bulk_create(
            StepTemplate(process_id=process.pk, position=position, name=name, executor="simulator")
            for process in processes
            for position, name in enumerate(STEP_NAMES[:4])
        )
        self.report(f"  environments {len(self.environments)}, services {len(self.services)}, policies, templates")

    # --- the CMDB ------------------------------------------------------------------------------------------

    def cmdb(self, copier: _Copier) -> None:
        """A hub (the core network) with exactly ``hub_downstream`` CIs downstream, then stacks of CIs of one
        service in one environment, linked among themselves (so impact stays within a stack)."""
        sizes, rng = self.sizes, self.rng
        owners = self.role_users[Role.DEPLOYMENT_MANAGER]
        hub_tree = sizes.hub_downstream + 1
        first_level = max(1, math.isqrt(sizes.hub_downstream))
        self.stacks: dict[tuple[int, int], list[int]] = {}  # (service, environment) → CI ids
        rows = []
        moment = self.start - timedelta(days=30)
        for ci in range(1, sizes.cis + 1):
            if ci <= hub_tree:
                # live, so that the impact analysis walks the whole tree; the leaves serve every service
                environment, state = self.production, CiState.LIVE
                service = self.services[ci % len(self.services)] if ci > first_level + 1 else None
                ci_type = CiType.NETWORK if ci == 1 else CiType.SERVER if ci <= first_level + 1 else CiType.APPLICATION
                name = "core-network" if ci == 1 else f"edge-{ci:06d}"
            else:
                stack = (ci - hub_tree - 1) // STACK_SIZE
                local = (ci - hub_tree - 1) % STACK_SIZE
                service = self.services[stack % len(self.services)]
                environment = self.environments[(stack // len(self.services)) % len(self.environments)]
                self.stacks.setdefault((service, environment), []).append(ci)
                ci_type = (
                    CI_LAYOUT[local]
                    if local < len(CI_LAYOUT)
                    else (CiType.SERVER if local % 3 == 0 else CiType.APPLICATION)
                )
                name = f"{slugify(self.service_names[service])}-{ci_type.replace('_', '-')}-{ci:06d}"
                state = CiState.LIVE if rng.random() < 0.9 else rng.choice(list(CiState))
            created = moment + timedelta(seconds=ci)
            rows.append(
                (
                    ci,
                    name,
                    ci_type,
                    state,
                    f"{rng.randint(1, 9)}.{rng.randint(0, 30)}",
                    "{}",
                    owners[ci % len(owners)],
                    environment,
                    service,
                    created,
                    created,
                )
            )
        copier.copy(
            ConfigurationItem,
            [
                "id",
                "name",
                "ci_type",
                "state",
                "version",
                "attributes",
                "owner_id",
                "environment_id",
                "service_id",
                "created",
                "updated",
            ],
            rows,
        )
        copier.copy(Relationship, ["id", "source_id", "target_id", "kind", "created"], self._relationships(hub_tree))
        targets, n = [], 0
        self.targets: dict[tuple[int, int], list[int]] = {}
        for key, cis in self.stacks.items():
            for ci in cis[len(CI_LAYOUT) : len(CI_LAYOUT) + 4]:  # the first application servers of each stack
                n += 1
                targets.append((n, ci, f"ring-{n % 3}", "", True, self.start))
                self.targets.setdefault(key, []).append(n)
        copier.copy(Target, ["id", "ci_id", "ring", "group", "enabled", "created"], targets)

    def _relationships(self, hub_tree: int) -> Iterable[tuple]:
        sizes, rng = self.sizes, self.rng
        first_level = max(1, math.isqrt(sizes.hub_downstream))
        at = self.start
        n = 0
        for ci in range(2, hub_tree + 1):
            n += 1
            if ci <= first_level + 1:
                yield (n, ci, 1, RelationshipKind.DEPENDS_ON, at)
            else:
                yield (n, ci, 2 + (ci - first_level - 2) % first_level, RelationshipKind.RUNS_ON, at)
        remaining = sizes.relationships - n
        stacked = sizes.cis - hub_tree
        carry = 0
        for ci in range(hub_tree + 1, sizes.cis + 1):
            local = (ci - hub_tree - 1) % STACK_SIZE
            left = sizes.cis - ci + 1
            want = remaining // left + (rng.random() < (remaining % left) / left) + carry if stacked else 0
            take = min(want, local, remaining)  # distinct earlier CIs of the same stack: a DAG, no duplicates
            carry = want - take
            for offset in rng.sample(range(1, local + 1), take):
                n += 1
                remaining -= 1
                yield (n, ci, ci - offset, rng.choice(RELATIONSHIP_KINDS), at)

    # --- releases, packages, units, approvals ------------------------------------------------------------

    def releases(self, copier: _Copier) -> _Releases:
        sizes, rng = self.sizes, self.rng
        old_state, recent_state = _weighted(rng, OLD_RELEASE_STATES), _weighted(rng, RECENT_RELEASE_STATES)
        kind = _weighted(
            rng, {ReleaseType.MINOR: 50, ReleaseType.PATCH: 35, ReleaseType.MAJOR: 10, ReleaseType.EMERGENCY: 5}
        )
        managers, requesters = self.role_users[Role.RELEASE_MANAGER], self.role_users[Role.DEPLOYMENT_MANAGER]
        data = _Releases([], [], [], [], [], [], [], [])
        running_services: set[int] = set()
        rows, service_rows, versions = [], [], {}
        for rid in range(1, sizes.releases + 1):
            created = self.start + YEAR * ((rid - rng.random()) / sizes.releases)
            service = self.services[rng.randrange(len(self.services))]
            state = recent_state() if self.now - created < RECENT else old_state()
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
                zip(RELEASE_STAGE_FIELDS, _path(rng, created, RELEASE_STAGE_HOURS, reached, self.now), strict=False)
            )
            if state in (ReleaseState.CANCELLED, ReleaseState.FAILED, ReleaseState.ROLLED_BACK):
                last = max(moments.values(), default=created)
                moments["ended_at"] = last + (self.now - last) * rng.uniform(0.01, 0.05)
            versions[service] = versions.get(service, 0) + 1
            release_type = kind()
            planned_start = created + timedelta(days=rng.uniform(3, 20))
            requester, manager = requesters[rid % len(requesters)], managers[rid % len(managers)]
            version = f"{versions[service] // 20 + 1}.{versions[service] % 20}.0"
            rows.append(
                (
                    rid,
                    self.service_names[service],
                    version,
                    release_type,
                    self.policies[release_type],
                    planned_start,
                    planned_start + timedelta(hours=rng.uniform(1, 8)),
                    manager,
                    requester,
                    state,
                    f"Release {rid} of {self.service_names[service]}.",
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
        self._packages(copier, data)
        self._units(copier, data)
        return data

    def _packages(self, copier: _Copier, data: _Releases) -> None:
        rng = self.rng
        builders, validators = self.role_users[Role.BUILD_ENGINEER], self.role_users[Role.DEPLOYMENT_MANAGER]
        rows, pid = [], 0
        for index, state in enumerate(data.state):
            rid, created, moments = index + 1, data.created[index], data.moments[index]
            submitted = moments.get("submitted_at")
            if submitted is None and (state == ReleaseState.DRAFT or rng.random() < 0.5):
                data.package.append(None)
                data.package_ready.append(None)
                continue
            built_at = created + ((submitted or self.now) - created) * rng.uniform(0.3, 0.9)
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
                    _json([commit]),
                    _json([f"WORK-{rid}"]),
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

    def _units(self, copier: _Copier, data: _Releases) -> None:
        rows, links = [], []
        for index, service in enumerate(data.service):
            rid = index + 1
            cis = self.stacks.get((service, self.production)) or [1]
            for n, (kind, reversible) in enumerate(
                [(UnitKind.APPLICATION_ARTIFACT, True), (UnitKind.DATABASE_MIGRATION, rid % 5 != 0)]
            ):
                uid = 2 * index + n + 1
                rows.append((uid, rid, f"{kind.label} {n + 1}", kind, "1", reversible))
                links.append((uid, uid, cis[(rid + n) % len(cis)]))
        copier.copy(ReleaseUnit, ["id", "release_id", "name", "kind", "version", "reversible"], rows)
        copier.copy(ReleaseUnit.configuration_items.through, ["id", "releaseunit_id", "configurationitem_id"], links)

    # --- changes and approvals ---------------------------------------------------------------------------

    def changes(self, copier: _Copier, releases: _Releases) -> list[int | None]:
        """One normal (or emergency) change per release that was approved, then standard and standalone changes
        up to the total, ids rising with time. Returns each release's change id (or None)."""
        sizes, rng = self.sizes, self.rng
        old_state, recent_state = _weighted(rng, OLD_CHANGE_STATES), _weighted(rng, RECENT_CHANGE_STATES)
        requesters = self.role_users[Role.DEPLOYMENT_MANAGER]
        approvers = self.role_users[Role.CHANGE_APPROVER]
        pending = []  # (created, release index or None, service)
        for index, state in enumerate(releases.state):
            moments = releases.moments[index]
            if state in CHANGE_OF_RELEASE and moments.get("approved_at") is not None:
                created = moments["submitted_at"] - (moments["submitted_at"] - releases.created[index]) / 2
                pending.append((created, index, releases.service[index]))
        pending = pending[: sizes.changes]
        standalone = sizes.changes - len(pending)
        for n in range(standalone):
            created = self.start + YEAR * ((n + rng.random()) / standalone)
            pending.append((created, None, self.services[rng.randrange(len(self.services))]))
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
                stages = _path(rng, created, CHANGE_STAGE_HOURS[:3], 3, moments["approved_at"])
                if CHANGE_STAGES[state] >= 4:
                    stages.append(start)
                if CHANGE_STAGES[state] >= 5:
                    stages.append(moments.get("deployed_at") or moments.get("ended_at") or start + timedelta(hours=2))
                if CHANGE_STAGES[state] >= 6:
                    stages += _path(rng, stages[-1], CHANGE_STAGE_HOURS[5:], 2, self.now)
            else:
                state = recent_state() if self.now - created < RECENT else old_state()
                change_type = ChangeType.STANDARD if rng.random() < 0.6 else ChangeType.NORMAL
                stages = _path(rng, created, CHANGE_STAGE_HOURS, CHANGE_STAGES[state], self.now)
                start = stages[3] if len(stages) > 3 else created + timedelta(days=rng.uniform(1, 10))
            moments = dict(zip(CHANGE_STAGE_FIELDS, stages, strict=False))
            requester = requesters[cid % len(requesters)]
            rows.append(
                (
                    cid,
                    f"CHG-{cid:04d}",
                    change_type,
                    self.templates[service] if change_type == "standard" else None,
                    f"Change {cid}: {self.service_names[service]}",
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
        managers = self.role_users[Role.RELEASE_MANAGER]
        for index, state in enumerate(releases.state):
            decided = releases.moments[index].get("approved_at")
            if state == ReleaseState.REJECTED:
                decided = min(self.now, releases.moments[index]["submitted_at"] + timedelta(hours=2))
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

    # --- deployments, waves, steps, logs -----------------------------------------------------------------

    def deployments(self, copier: _Copier, releases: _Releases, release_change: list[int | None]) -> None:
        sizes, rng = self.sizes, self.rng
        operators = self.role_users[Role.DEPLOYMENT_MANAGER]
        other_state = _weighted(rng, OTHER_DEPLOYMENT_STATES)
        model = _weighted(rng, {DeploymentModel.BIG_BANG: 6, DeploymentModel.PHASED: 3, DeploymentModel.PARALLEL: 1})
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
                        self.production,
                    )
                )
        planned = planned[: sizes.deployments]
        built = [index for index, ready in enumerate(releases.package_ready) if ready is not None]
        for _ in range(sizes.deployments - len(planned)):  # to the lower environments, before production
            index = rng.choice(built)
            ready, moments = releases.package_ready[index], releases.moments[index]
            until = moments.get("deployment_started_at") or moments.get("ended_at") or self.now
            started = ready + (until - ready) * rng.uniform(0.05, 0.9)
            finished = started + timedelta(minutes=rng.uniform(2, 90))
            planned.append(
                (
                    started - timedelta(minutes=2),
                    started,
                    min(finished, self.now),
                    other_state(),
                    index,
                    self.environments[rng.randrange(len(self.environments) - 1)],
                )
            )
        planned.sort(key=lambda item: item[0])
        big = next(
            (
                n
                for n, item in enumerate(planned)
                if item[3] == DeploymentState.SUCCEEDED and item[5] == self.production
            ),
            0,
        )
        step_counts = self._step_counts(len(planned), big)
        deployment_rows, wave_rows, locks = [], [], []
        wave_id = 0
        self.deployment_waves: list[list[tuple[int, int]]] = []  # per deployment: (wave id, steps in it)
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
                    self.processes[service],
                    releases.package[index],
                    release_change[index] if environment == self.production else None,
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
                wave_state = self._wave_state(state, w, waves)
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
            self.deployment_waves.append(mine)
        self.big_deployment = big + 1
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
        self._els(copier, releases, planned)
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
            self._steps(planned, releases),
        )
        copier.copy(StepLog, ["id", "step_id", "at", "level", "message"], self._step_logs())
        self.report(f"  the deployment with {sizes.big_deployment_steps} steps: #{self.big_deployment}")

    def _step_counts(self, deployments: int, big: int) -> list[int]:
        """Steps per deployment: the big one's count, the rest spread evenly with some spread around it."""
        rest = self.sizes.steps - self.sizes.big_deployment_steps
        base, extra = divmod(rest, deployments - 1)
        counts = [base + (n < extra) for n in range(deployments - 1)]
        for n in range(0, len(counts) - 1, 2):
            shift = self.rng.randint(0, min(counts[n], counts[n + 1]) - 1)
            counts[n] -= shift
            counts[n + 1] += shift
        counts.insert(big, self.sizes.big_deployment_steps)
        return counts

    @staticmethod
    def _wave_state(state: str, wave: int, waves: int) -> str:
        last = wave == waves - 1
        if state == DeploymentState.SUCCEEDED:
            return WaveState.PASSED
        if state == DeploymentState.RUNNING:
            return WaveState.RUNNING if wave == 0 else WaveState.PENDING
        if state in (DeploymentState.FAILED, DeploymentState.ROLLED_BACK):
            return WaveState.FAILED if last else WaveState.PASSED
        return WaveState.PASSED if not last else WaveState.PENDING  # aborted before its last wave

    def _steps(self, planned: list, releases: _Releases) -> Iterable[tuple]:
        sid = 0
        self.step_times: list[datetime] = []
        for did, (_, started, finished, state, index, environment) in enumerate(planned, start=1):
            targets = self.targets.get((releases.service[index], environment)) or [None]
            waves = self.deployment_waves[did - 1]
            total = sum(count for _, count in waves)
            end = finished or self.now
            position = 0
            for wave_id, count in waves:
                for _ in range(count):
                    sid += 1
                    step_state = self._step_state(state, position, total)
                    at = started + (end - started) * (position / total)
                    done = step_state in (StepState.SUCCEEDED, StepState.FAILED)
                    self.step_times.append(at)
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

    @staticmethod
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

    def _step_logs(self) -> Iterable[tuple]:
        steps, logs = len(self.step_times), self.sizes.step_logs
        base, extra = divmod(logs, steps)
        lid = 0
        for sid, at in enumerate(self.step_times, start=1):
            for line in range(base + (sid <= extra)):
                lid += 1
                level = LogLevel.INFO if line else LogLevel.DEBUG
                yield (lid, sid, at + timedelta(milliseconds=150 * line), level, f"step {sid}: line {line + 1}")

    def _els(self, copier: _Copier, releases: _Releases, planned: list) -> None:
        rows = []
        for did, (_, _, _, _, index, environment) in enumerate(planned, start=1):
            started = releases.moments[index].get("els_started_at")
            if environment != self.production or started is None:
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

    # --- incidents -----------------------------------------------------------------------------------------

    def incidents(self, copier: _Copier) -> None:
        sizes, rng = self.sizes, self.rng
        severity = _weighted(rng, INCIDENT_SEVERITIES)
        reporters = self.role_users[Role.SERVICE_OWNER]
        rows = []
        deployments = len(self.deployment_waves)
        for iid in range(1, sizes.incidents + 1):
            opened = self.start + YEAR * ((iid - rng.random()) / sizes.incidents)
            age = self.now - opened
            if age > timedelta(days=14):
                state = IncidentState.CLOSED if rng.random() < 0.9 else IncidentState.RESOLVED
            else:
                state = rng.choice(list(IncidentState))
            reached = {IncidentState.OPEN: 0, IncidentState.ACKNOWLEDGED: 1, IncidentState.RESOLVED: 2}.get(state, 3)
            acknowledged, resolved, closed = [
                *_path(rng, opened, [(0, 2), (1, 48), (24, 96)], reached, self.now),
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

    # --- the audit trail -----------------------------------------------------------------------------------

    def audit(self, copier: _Copier) -> str:
        """``audit_events`` transitions and edits spread evenly over the year, each naming a record created
        before it, chained exactly as ``rdm_site.audit.audit_record`` chains them. Returns the head hash."""
        sizes, rng = self.sizes, self.rng
        counts = {
            "releases.release": sizes.releases,
            "releases.changerecord": sizes.changes,
            "deployments.deployment": len(self.deployment_waves),
            "deployments.incident": sizes.incidents,
            "cmdb.configurationitem": sizes.cis,
        }
        kind = _weighted(rng, AUDIT_SHARES)
        fields = [field for field in AuditEvent._meta.concrete_fields if not getattr(field, "generated", False)]
        columns = [field.attname for field in fields]
        json_columns = {field.attname for field in fields if isinstance(field, models.JSONField)}
        event = AuditEvent()
        if AuditEvent.objects.exists():
            raise DatabaseNotEmpty("audit events were recorded while generating; the chain must be the year alone")
        head = {"hash": GENESIS_HASH}
        step = YEAR / sizes.audit_events

        def rows() -> Iterable[tuple]:
            for eid in range(1, sizes.audit_events + 1):
                object_type = kind()
                progress = eid / sizes.audit_events
                object_id = max(1, round(counts[object_type] * progress) - rng.randrange(0, 50))
                action, from_state, to_state = rng.choice(AUDIT_STORIES[object_type])
                users = self.role_users[AUDIT_ROLES[object_type]]
                system = object_type == "deployments.deployment" and rng.random() < 0.5
                event.id = eid
                event.occurred_at = self.start + step * (eid - 0.5)
                event.actor_id = None if system else users[eid % len(users)]
                event.actor_label = "system" if system else self.usernames[event.actor_id]
                event.actor_kind = "system" if system else "user"
                event.action = action
                event.object_type = object_type
                event.object_id = str(object_id)
                event.object_repr = f"{object_type.split('.')[1]} #{object_id}"
                event.from_state, event.to_state = from_state, to_state
                event.reason = ""
                event.changes = {"version": ["1.0", "1.1"]} if action == "ci.update" else {}
                event.request_id = ""
                event.previous_hash = head["hash"]
                event.hash = head["hash"] = event.compute_hash()
                yield tuple(
                    _json(getattr(event, name)) if name in json_columns else getattr(event, name) for name in columns
                )

        copier.copy(AuditEvent, columns, rows())
        return head["hash"]


def database_is_empty() -> bool:
    """No user, CI, release, deployment or audit event yet (a freshly migrated database)."""
    return not any(
        model.objects.exists() for model in (User, ConfigurationItem, Release, Deployment, AuditEvent, Service)
    )


def scale_generate(
    sizes: ScaleSizes, *, seed: int = 1, now: datetime | None = None, report: Callable[[str], None] = print
) -> dict[str, int]:
    """Fill the empty database with ``sizes`` worth of one year; returns the rows written per table.

    Raises ``DatabaseNotEmpty`` when anything is there already.
    """
    sizes = sizes.checked()
    if not database_is_empty():
        raise DatabaseNotEmpty(
            "The database already holds data; scale data goes only into an empty, migrated database."
        )
    now = now or timezone.now()
    generator = _Generator(sizes, seed=seed, now=now, report=report)
    started = time.monotonic()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        report("people, places and policies")
        generator.users()
        generator.places()
        copier = _Copier(connection.connection.cursor(), report)
        report("CMDB")
        generator.cmdb(copier)
        report("releases")
        releases = generator.releases(copier)
        report("changes and approvals")
        release_change = generator.changes(copier, releases)
        report("deployments")
        generator.deployments(copier, releases, release_change)
        report("incidents")
        generator.incidents(copier)
        report("audit trail")
        head = generator.audit(copier)
        with connection.cursor() as cursor:
            for statement in connection.ops.sequence_reset_sql(no_style(), _copied_models()):
                cursor.execute(statement)
    report(f"written and committed in {time.monotonic() - started:.1f} s; audit head {head}")
    analysed = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    report(f"VACUUM (ANALYZE) {time.monotonic() - analysed:.1f} s; total {time.monotonic() - started:.1f} s")
    return copier.counts


def _copied_models() -> list[type[models.Model]]:
    return [
        ConfigurationItem,
        Relationship,
        Target,
        Release,
        Release.services.through,
        ReleasePackage,
        ReleaseUnit,
        ReleaseUnit.configuration_items.through,
        ChangeRecord,
        ChangeRecord.services.through,
        Approval,
        Deployment,
        DeploymentLock,
        Wave,
        EarlyLifeSupport,
        Step,
        StepLog,
        Incident,
        AuditEvent,
    ]
