"""Reading a file of CIs (CSV or JSON) and checking all of it before anything is written.

One CI per CSV row or JSON object, with these columns / keys:

- ``name``, ``environment`` (required): together they identify the CI; an existing CI is updated.
- ``type`` (required for a new CI): application, database, server, cluster, network, ...
- ``version``; ``service`` (its name); ``owner`` (a username).
- ``state``: a new CI starts in it (default planned: registering a CI that already runs is not a
  move). An existing CI reaches a different state through the one lifecycle transition that leads
  there, recorded like any other transition; a state that no single transition reaches is refused.
- ``attributes``: a JSON object (in CSV, its JSON text); when given, it replaces the CI's attributes.
- ``depends_on``, ``runs_on``, ``part_of``, ``connects_to``: the CIs this one points at, each
  ``name`` (same environment) or ``name@environment``; separated by ``;`` in CSV, a list in JSON.
  They may name CIs further down the file. An import adds relationships and never removes one.

An empty or missing value leaves an existing CI's value as it is. Problems are reported with their
place ("line 4" of a CSV file, counting the header as line 1; "item 3" of a JSON list, counting
from 0), all at once, and any problem means nothing of the file is imported.
"""

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from cmdb.choices import CiState, CiTransition, CiType, ImportFormat, RelationshipKind
from cmdb.exceptions import ImportFailed, ImportProblem
from cmdb.models import ConfigurationItem, Environment, Service
from cmdb.permissions import ownership_problem
from rdm_site.changes import apply_changes

CiKey = tuple[str, str]  # (CI name, environment name)

TEXT_COLUMNS = ("name", "environment", "type", "version", "state", "service", "owner")
COLUMNS = (*TEXT_COLUMNS, "attributes", *RelationshipKind.values)
# The import's column names for the fields they fill where the two differ.
FIELD_OF_COLUMN = {"type": "ci_type"}
IMPORTED_FIELDS = ("ci_type", "version", "service", "owner", "attributes")


@dataclass
class ImportRow:
    """One CI as the file states it, before anything is looked up."""

    where: str
    text: dict[str, str]  # every TEXT_COLUMNS value, stripped; "" when not given
    attributes: dict[str, Any] | None
    references: dict[RelationshipKind, list[str]]

    @property
    def key(self) -> CiKey:
        return self.text["name"], self.text["environment"]


@dataclass
class PlannedCi:
    """A CI as it will be saved: a new unsaved instance, or the locked existing row with the file's edits."""

    row: ImportRow
    ci: ConfigurationItem
    is_new: bool
    changes: dict[str, list[Any]] = field(default_factory=dict)
    transition: CiTransition | None = None


@dataclass
class PlannedRelationship:
    source: CiKey
    target: CiKey
    kind: RelationshipKind


@dataclass
class ImportPlan:
    cis: list[PlannedCi]
    relationships: list[PlannedRelationship]
    # The CIs already in the CMDB that relationships point at without the file defining them.
    referenced: dict[CiKey, ConfigurationItem]


# --- reading ----------------------------------------------------------------------------------


def _read_rows(source: str, file_format: ImportFormat | str) -> tuple[list[ImportRow], list[ImportProblem]]:
    """Parse the file into rows, and list every problem of form it has."""
    file_format = ImportFormat(file_format)
    records, problems = _csv_records(source) if file_format == ImportFormat.CSV else _json_records(source)
    rows = []
    for where, record in records:
        row, row_problems = _row(where, record, from_csv=file_format == ImportFormat.CSV)
        rows.append(row)
        problems.extend(row_problems)
    return rows, problems


def _csv_records(source: str) -> tuple[list[tuple[str, dict]], list[ImportProblem]]:
    reader = csv.DictReader(io.StringIO(source, newline=""))  # the csv module reads line ends itself
    try:
        if not reader.fieldnames:
            return [], [ImportProblem("line 1", "the file is empty; the first line must name the columns")]
        unknown = [name for name in reader.fieldnames if name not in COLUMNS]
        if unknown:
            return [], [ImportProblem("line 1", f"unknown columns {unknown}; known: {list(COLUMNS)}")]
        records, problems = [], []
        for record in reader:
            where = f"line {reader.line_num}"
            if None in record:
                problems.append(ImportProblem(where, "the row has more cells than the header has columns"))
            records.append((where, {name: value for name, value in record.items() if name is not None}))
    except csv.Error as error:  # a stray quote or carriage return, a cell past the csv module's size limit
        return [], [ImportProblem(f"line {max(reader.line_num, 1)}", f"not valid CSV: {error}")]
    return records, problems


def _json_records(source: str) -> tuple[list[tuple[str, dict]], list[ImportProblem]]:
    try:
        items = json.loads(source)
    except json.JSONDecodeError as error:
        return [], [ImportProblem(f"line {error.lineno}", f"not valid JSON: {error.msg}")]
    if not isinstance(items, list):
        return [], [ImportProblem("item 0", "the file must hold a JSON list of objects")]
    records, problems = [], []
    for index, item in enumerate(items):
        where = f"item {index}"
        if not isinstance(item, dict):
            problems.append(ImportProblem(where, "each item must be a JSON object"))
        elif unknown := sorted(set(item) - set(COLUMNS)):
            problems.append(ImportProblem(where, f"unknown keys {unknown}; known: {list(COLUMNS)}"))
        else:
            records.append((where, item))
    return records, problems


def _row(where: str, record: dict, *, from_csv: bool) -> tuple[ImportRow, list[ImportProblem]]:
    problems = []
    text = {}
    for column in TEXT_COLUMNS:
        value = record.get(column)
        if value is None:
            value = ""
        elif isinstance(value, bool) or not isinstance(value, str | int | float):
            problems.append(ImportProblem(where, f"{column} must be text"))
            value = ""
        text[column] = str(value).strip()
    for column in ("name", "environment"):
        if not text[column]:
            problems.append(ImportProblem(where, f"{column} is required"))

    attributes = record.get("attributes")
    if from_csv and attributes:
        try:
            attributes = json.loads(attributes)
        except (ValueError, RecursionError) as error:  # not JSON, a number of thousands of digits, too deep
            problems.append(ImportProblem(where, f"attributes are not valid JSON: {getattr(error, 'msg', error)}"))
            attributes = None
    if attributes in (None, ""):
        attributes = None
    elif not isinstance(attributes, dict):
        problems.append(ImportProblem(where, "attributes must be a JSON object"))
        attributes = None

    references = {}
    for kind in RelationshipKind:
        given = record.get(kind.value)
        names = given.split(";") if from_csv and given else given or []
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            problems.append(ImportProblem(where, f"{kind.value} must be a list of CI names"))
            names = []
        references[kind] = [name.strip() for name in names if name.strip()]
    return ImportRow(where=where, text=text, attributes=attributes, references=references), problems


# --- checking against the CMDB ----------------------------------------------------------------


def import_plan(source: str, file_format: ImportFormat | str, *, actor: User | None) -> ImportPlan:
    """Read the file, resolve every name, check every rule, lock the existing CIs it touches, and say what
    will be written. Raises ``ImportFailed`` with every problem of every row, in file order; call it inside
    the import's transaction.
    """
    rows, problems = _read_rows(source, file_format)
    # A row without its name or environment is reported already and cannot be checked further.
    rows = [row for row in rows if all(row.key)]
    lookups = _Lookups(rows)
    in_file: set[CiKey] = set()
    planned: list[PlannedCi] = []
    for row in rows:
        if row.key in in_file:
            reason = f"CI {row.key[0]!r} in {row.key[1]!r} appears earlier in the file"
            problems.append(ImportProblem(row.where, reason))
            continue
        in_file.add(row.key)
        ci_plan, row_problems = _plan_ci(row, lookups, actor)
        problems.extend(row_problems)
        if ci_plan:
            planned.append(ci_plan)

    relationships, referenced = [], {}
    for row in rows:
        for kind, names in row.references.items():
            for name in names:
                target = _reference_key(name, row.key[1])
                if target == row.key:
                    problems.append(ImportProblem(row.where, f"{row.key[0]!r} cannot {kind.value} itself"))
                elif target in in_file or target in lookups.existing:
                    relationships.append(PlannedRelationship(source=row.key, target=target, kind=kind))
                    if target not in in_file:
                        referenced[target] = lookups.existing[target]
                else:
                    reason = f"{kind.value} names {name!r}, which is neither in the file nor in the CMDB"
                    problems.append(ImportProblem(row.where, reason))
    if problems:
        raise ImportFailed(sorted(problems, key=lambda problem: int(problem.where.split()[-1])))
    return ImportPlan(cis=planned, relationships=relationships, referenced=referenced)


def _reference_key(reference: str, own_environment: str) -> CiKey:
    name, _, environment = reference.partition("@")
    return name.strip(), environment.strip() or own_environment


class _Lookups:
    """Everything the file names, fetched in a handful of queries."""

    def __init__(self, rows: list[ImportRow]):
        texts = [row.text for row in rows]
        self.environments = {env.name: env for env in Environment.objects.all()}
        self.services = {
            service.name: service
            for service in Service.objects.select_related("owner").filter(name__in={t["service"] for t in texts})
        }
        self.users = {user.username: user for user in User.objects.filter(username__in={t["owner"] for t in texts})}
        keys = {row.key for row in rows} | {
            _reference_key(name, row.key[1]) for row in rows for names in row.references.values() for name in names
        }
        candidates = (
            ConfigurationItem.objects.select_for_update(of=("self",))
            .select_related("environment", "service__owner")
            .filter(name__in={name for name, _ in keys}, environment__name__in={env for _, env in keys})
        )
        self.existing = {(ci.name, ci.environment.name): ci for ci in candidates}


def _plan_ci(row: ImportRow, lookups: _Lookups, actor: User | None) -> tuple[PlannedCi | None, list[ImportProblem]]:
    text = row.text
    problems = []

    def refuse(reason: str) -> None:
        problems.append(ImportProblem(row.where, reason))

    environment = lookups.environments.get(text["environment"])
    if text["environment"] and environment is None:
        refuse(f"unknown environment {text['environment']!r}")
    data: dict[str, Any] = {}
    if text["type"]:
        if text["type"] in CiType.values:
            data["ci_type"] = text["type"]
        else:
            refuse(f"unknown type {text['type']!r}; known: {', '.join(CiType.values)}")
    if text["version"]:
        data["version"] = text["version"]
    if text["service"]:
        data["service"] = lookups.services.get(text["service"])
        if data["service"] is None:
            refuse(f"unknown service {text['service']!r}")
    if text["owner"]:
        data["owner"] = lookups.users.get(text["owner"])
        if data["owner"] is None:
            refuse(f"unknown user {text['owner']!r}")
    if row.attributes is not None:
        data["attributes"] = row.attributes
    if text["state"] and text["state"] not in CiState.values:
        refuse(f"unknown state {text['state']!r}; known: {', '.join(CiState.values)}")
    if problems or environment is None:
        return None, problems

    existing = lookups.existing.get(row.key)
    for service in _services_touched(existing, data):
        if problem := ownership_problem(actor, service, f"import CI {text['name']!r}"):
            refuse(problem)
    if existing is None:
        if "ci_type" not in data:
            refuse("type is required for a new CI")
        plan = PlannedCi(
            row=row,
            ci=ConfigurationItem(name=text["name"], environment=environment, state=text["state"] or CiState.PLANNED),
            is_new=True,
        )
    else:
        plan = PlannedCi(row=row, ci=existing, is_new=False)
        if text["state"] and text["state"] != existing.state:
            plan.transition = ConfigurationItem.transition_between(existing.state, text["state"])
            if plan.transition is None:
                refuse(f"{existing.state} cannot become {text['state']}: no single lifecycle transition leads there")
    plan.changes = apply_changes(plan.ci, data, IMPORTED_FIELDS)
    try:
        plan.ci.full_clean(exclude=["environment", "service", "owner"], validate_constraints=False)
    except ValidationError as error:
        refuse("; ".join(f"{name}: {' '.join(messages)}" for name, messages in error.message_dict.items()))
    return (None if problems else plan), problems


def _services_touched(existing: ConfigurationItem | None, data: dict[str, Any]) -> list[Service | None]:
    """The services whose owner must agree: the one the CI belongs to now, and the one it will belong to."""
    if existing is None:
        return [data.get("service")]
    return list(dict.fromkeys([existing.service, data.get("service", existing.service)]))
