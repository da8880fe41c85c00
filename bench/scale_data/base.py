"""What the generators share: the sizes, the COPY writer, the year's context and small helpers."""

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

from django.db import connection, models

from bench.scale_data.tables import STACK_SIZE, YEAR
from rdm_site.roles import Role


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


class DatabaseNotEmpty(Exception):
    """The scale data is only ever written into an empty database, so nothing of value is mixed with it."""


def weighted(rng: random.Random, weights: dict) -> Callable[[], str]:
    choices, cumulative = list(weights), list(itertools.accumulate(weights.values()))
    return lambda: rng.choices(choices, cum_weights=cumulative)[0]


def path(rng: random.Random, start: datetime, hours: Sequence[tuple[int, int]], reached: int, end: datetime):
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


def as_json(value) -> str:
    return json.dumps(value, separators=(",", ":"))


class Copier:
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
        return as_json(value) if isinstance(field, models.JSONField) else value


@dataclass
class Releases:
    """What later tables need to know of the releases, indexed by release id - 1."""

    created: list[datetime]
    state: list[str]
    moments: list[dict[str, datetime]]
    service: list[int]
    version: list[str]
    requested_by: list[int]
    package: list[int | None]  # the current package's id
    package_ready: list[datetime | None]  # when the current package was built


class Year:
    """What the generators share: the sizes, one random sequence, the year's span, and what earlier steps made."""

    def __init__(self, sizes: ScaleSizes, *, seed: int, now: datetime, report: Callable[[str], None]):
        self.sizes = sizes
        self.rng = random.Random(seed)
        self.now = now
        self.start = now - YEAR
        self.report = report
        self.role_users: dict[Role, list[int]] = {}
        self.usernames: dict[int, str] = {}
        self.environments: list[int] = []
        self.production = 0
        self.services: list[int] = []
        self.service_names: dict[int, str] = {}
        self.policies: dict[str, int] = {}
        self.templates: dict[int, int] = {}  # service → its standard change template
        self.processes: dict[int, int] = {}  # service → its deployment process
        self.stacks: dict[tuple[int, int], list[int]] = {}  # (service, environment) → CI ids
        self.targets: dict[tuple[int, int], list[int]] = {}  # (service, environment) → target ids
        self.deployment_waves: list[list[tuple[int, int]]] = []  # per deployment: (wave id, steps in it)
        self.step_times: list[datetime] = []
        self.big_deployment = 0
