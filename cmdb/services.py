"""Every write to the CMDB. Each service is one transaction: it re-reads what it changes under a row lock,
checks who may (``cmdb.actions`` for CIs), refuses with the platform's domain errors, and records the
transition or edit (``rdm_site.transitions``).

``actor`` is the user acting, or None when RDM acts on its own authority (a task after a deployment);
requests always pass their user. Bad field values and reasons that are too long raise ``InvalidInput``
naming every problem.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.text import slugify

from cmdb import permissions as perms
from cmdb.actions import CI_ACTIONS, UPDATE
from cmdb.choices import CiState, CiTransition, CiType, Criticality, EnvironmentTier, ImportFormat, RelationshipKind
from cmdb.exceptions import ImportFailed, ImportProblem, InvalidInput, NotAllowed
from cmdb.importing import ImportPlan, PlannedCi, import_plan
from cmdb.models import Baseline, BaselineItem, ConfigurationItem, Environment, Relationship, Service
from cmdb.selectors import ci_live_dependents
from rdm_site.actions import action_ensure
from rdm_site.changes import apply_changes
from rdm_site.domain import apply_transition, bounded_text, ensure_allowed, ensure_conditions, locked, save, validated
from rdm_site.transitions import transition_record, transitions_record

ENVIRONMENT_FIELDS = ("name", "slug", "tier", "promotion_order", "description")
SERVICE_FIELDS = ("name", "slug", "description", "owner", "criticality", "stakeholders")
CI_FIELDS = ("name", "ci_type", "version", "attributes", "owner", "environment", "service")


def _save_new(instance: Model) -> None:
    validated(instance)
    instance.save()


def _save_changes(instance: Model, changes: dict[str, list[Any]]) -> None:
    """Save only the columns that changed (and the row's "updated" stamp); ``apply_changes`` set the
    many-to-many fields already.
    """
    validated(instance)
    columns = {field.name for field in instance._meta.concrete_fields}
    stamps = [f.name for f in instance._meta.concrete_fields if getattr(f, "auto_now", False)]
    save(instance, update_fields=[*(name for name in changes if name in columns), *stamps])


# --- environments and services: administrators only (no role holds these permissions) --------


@transaction.atomic
def environment_create(
    *,
    actor: User | None,
    name: str,
    tier: EnvironmentTier | str,
    promotion_order: int,
    slug: str = "",
    description: str = "",
) -> Environment:
    """Environments are the path every release walks to production, so only administrators lay it out."""
    ensure_allowed(perms.permission_problem(actor, perms.ADD_ENVIRONMENT, f"create environment {name!r}"))
    environment = Environment(
        name=name, slug=slug or slugify(name), tier=tier, promotion_order=promotion_order, description=description
    )
    _save_new(environment)
    transition_record(actor=actor, target=environment, action="environment.create")
    return environment


@transaction.atomic
def environment_update(*, environment: Environment, actor: User | None, data: dict[str, Any]) -> Environment:
    """Renaming or reordering environments changes every release's path; the trail keeps what it was."""
    environment = locked(environment)
    ensure_allowed(
        perms.permission_problem(actor, perms.CHANGE_ENVIRONMENT, f"change environment {environment.name!r}")
    )
    if changes := apply_changes(environment, data, ENVIRONMENT_FIELDS):
        _save_changes(environment, changes)
        transition_record(actor=actor, target=environment, action="environment.update", changes=changes)
    return environment


@transaction.atomic
def service_create(
    *,
    actor: User | None,
    name: str,
    owner: User,
    criticality: Criticality | str = Criticality.MEDIUM,
    slug: str = "",
    description: str = "",
    stakeholders: Iterable[User] = (),
) -> Service:
    """A service names who is accountable (its owner may then maintain its CIs), so administrators create it."""
    ensure_allowed(perms.permission_problem(actor, perms.ADD_SERVICE, f"create service {name!r}"))
    service = Service(
        name=name, slug=slug or slugify(name), owner=owner, criticality=criticality, description=description
    )
    _save_new(service)
    service.stakeholders.set(stakeholders)
    transition_record(actor=actor, target=service, action="service.create")
    return service


def service_update_problem(actor: User | None, service: Service) -> str | None:
    """Why ``actor`` may not edit ``service``, or None: what ``service_update`` checks, for pages to ask first."""
    return perms.permission_problem(actor, perms.CHANGE_SERVICE, f"change service {service.name!r}")


@transaction.atomic
def service_update(*, service: Service, actor: User | None, data: dict[str, Any]) -> Service:
    """A new owner hands over the right to edit the service's CIs; the trail says who held it when."""
    service = locked(service)
    ensure_allowed(service_update_problem(actor, service))
    if changes := apply_changes(service, data, SERVICE_FIELDS):
        _save_changes(service, changes)
        transition_record(actor=actor, target=service, action="service.update", changes=changes)
    return service


# --- configuration items ----------------------------------------------------------------------


def _ci_for_update(ci: ConfigurationItem) -> ConfigurationItem:
    """The CI as the database holds it now, locked until the transaction ends."""
    cis = ConfigurationItem.objects.select_for_update(of=("self",)).select_related("environment", "service__owner")
    return cis.get(pk=ci.pk)


@transaction.atomic
def ci_create(
    *,
    actor: User | None,
    name: str,
    environment: Environment,
    ci_type: CiType | str,
    service: Service | None = None,
    owner: User | None = None,
    version: str = "",
    attributes: dict[str, Any] | None = None,
    state: CiState | str = CiState.PLANNED,
) -> ConfigurationItem:
    """Registers a CI. One that already runs (a live server found by discovery) is registered in the state it
    is in: that is its first state, not a move through the lifecycle.
    """
    attempt = f"create CI {name!r} in {environment}"
    ensure_allowed(perms.ci_edit_problem(actor, perms.ADD_CI, service, attempt))
    ci = ConfigurationItem(
        name=name,
        environment=environment,
        ci_type=ci_type,
        service=service,
        owner=owner,
        version=version,
        attributes=attributes if attributes is not None else {},
        state=state,
    )
    _save_new(ci)
    transition_record(actor=actor, target=ci, action="ci.create", to_state=ci.state)
    return ci


@transaction.atomic
def ci_update(
    *, ci: ConfigurationItem, actor: User | None, data: dict[str, Any], reason: str = ""
) -> ConfigurationItem:
    """Edits a CI's fields (never its state: that moves only through ``ci_transition``).

    Service Owners may edit CIs of their own services, and may not move a CI into someone else's.
    Returns the fresh CI; ``data`` is applied to the row as it is now, not to the caller's copy.
    """
    reason = bounded_text(reason, "the reason")
    ci = _ci_for_update(ci)
    action_ensure(CI_ACTIONS, UPDATE, ci, actor)
    new_service = data.get("service", ci.service)
    if new_service != ci.service:
        ensure_allowed(perms.ownership_problem(actor, new_service, f"move CI {ci} to service {new_service}"))
    if changes := apply_changes(ci, data, CI_FIELDS):
        _save_changes(ci, changes)
        transition_record(actor=actor, target=ci, action="ci.update", reason=reason, changes=changes)
    return ci


@transaction.atomic
def ci_versions_set(*, versions: dict[ConfigurationItem, str], reason: str) -> int:
    """RDM's own record of the versions CIs now run (a deployment's end): what ``ci_update`` does for each CI
    whose version differs, by RDM itself, in a few statements however many CIs there are. Returns how many
    changed.
    """
    reason = bounded_text(reason, "the reason")
    field = ConfigurationItem._meta.get_field("version")
    for version in set(versions.values()):
        try:
            field.clean(version, None)
        except ValidationError as error:
            raise InvalidInput(f"The version {version!r} is not valid: {' '.join(error.messages)}") from None
    wanted = {ci.pk: version for ci, version in versions.items()}
    locked_cis = ConfigurationItem.objects.select_for_update(of=("self",)).filter(pk__in=wanted).order_by("pk")
    changed, records, now = [], [], timezone.now()
    for ci in locked_cis:
        if ci.version == wanted[ci.pk]:
            continue
        changes = {"version": [ci.version, wanted[ci.pk]]}
        ci.version, ci.updated = wanted[ci.pk], now
        changed.append(ci)
        records.append({"actor": None, "target": ci, "action": "ci.update", "reason": reason, "changes": changes})
    ConfigurationItem.objects.bulk_update(changed, ["version", "updated"])
    transitions_record(records)
    return len(changed)


def _live_dependents_named(ci: ConfigurationItem) -> str:
    """The live CIs that still depend on ``ci``, named with their environments ("" when none do)."""
    return ", ".join(f"{dependent.name} ({dependent.environment})" for dependent in ci_live_dependents(ci))


def _ensure_retirable(ci: ConfigurationItem, actor: User | None, reason: str, override_dependents: bool) -> str:
    """Refuses to retire a CI that live CIs still depend on, naming them; an administrator may override with
    a reason, and the reason recorded then names what was left depending on it.
    """
    dependents = _live_dependents_named(ci)
    if not dependents:
        return reason
    if not override_dependents:
        ensure_conditions(
            f"CI {ci} cannot retire",
            [f"live CIs still depend on it: {dependents} (an administrator may override with a reason)"],
        )
    if actor is None or not actor.is_superuser:
        raise NotAllowed(f"Only an administrator may retire CI {ci} while live CIs depend on it.")
    if not reason:
        raise InvalidInput("Give the reason for retiring a CI that live CIs still depend on.")
    return f"{reason} (retired while {dependents} depended on it)"


@transaction.atomic
def ci_transition(
    *,
    ci: ConfigurationItem,
    transition: CiTransition | str,
    actor: User | None,
    reason: str = "",
    override_dependents: bool = False,
) -> ConfigurationItem:
    """Moves a CI through its lifecycle (build, go_live, start_maintenance, end_maintenance, retire).

    The CI is re-read under lock, so two people pressing "go live" at once give one transition and one
    ``IllegalTransition``. Retiring a CI that live CIs depend on is refused unless an administrator
    overrides it (``override_dependents``) with a reason. Returns the fresh CI.
    """
    transition = CiTransition(transition)
    reason = bounded_text(reason, "the reason")
    ci = _ci_for_update(ci)
    action_ensure(CI_ACTIONS, transition.value, ci, actor)
    if transition == CiTransition.RETIRE:
        reason = _ensure_retirable(ci, actor, reason, override_dependents)
    from_state, to_state = apply_transition(ci, transition.value)
    save(ci, update_fields=["state", "updated"])
    transition_record(
        actor=actor, target=ci, action=f"ci.{transition.value}", from_state=from_state, to_state=to_state, reason=reason
    )
    return ci


# --- relationships ----------------------------------------------------------------------------


@transaction.atomic
def relationship_add(
    *, source: ConfigurationItem, target: ConfigurationItem, kind: RelationshipKind | str, actor: User | None
) -> Relationship:
    """States that ``source`` <kind> ``target``. It is a fact about the source (what it needs, runs on,
    belongs to), so whoever may edit the source may state it, even when the target is another's.
    """
    attempt = f"add a relationship to CI {source}"
    ensure_allowed(perms.ci_edit_problem(actor, perms.ADD_RELATIONSHIP, source.service, attempt))
    relationship = Relationship(source=source, target=target, kind=kind)
    _save_new(relationship)
    transition_record(actor=actor, target=relationship, action="relationship.create")
    return relationship


@transaction.atomic
def relationship_remove(*, relationship: Relationship, actor: User | None) -> None:
    """Removes a relationship; like adding one, it is the source CI's editors' call."""
    source = relationship.source
    attempt = f"remove a relationship of CI {source}"
    ensure_allowed(perms.ci_edit_problem(actor, perms.DELETE_RELATIONSHIP, source.service, attempt))
    transition_record(actor=actor, target=relationship, action="relationship.delete")
    relationship.delete()


# --- baselines --------------------------------------------------------------------------------


@transaction.atomic
def baseline_take(
    *,
    name: str,
    actor: User | None,
    reason: str = "",
    cis: Iterable[ConfigurationItem] | None = None,
    service: Service | None = None,
    environment: Environment | None = None,
) -> Baseline:
    """Snapshots a set of CIs (exactly one of: explicit ``cis``, a ``service``'s, an ``environment``'s), so a
    release can be compared before and after. Retired CIs of the set are kept, with their state.
    """
    if sum(scope is not None for scope in (cis, service, environment)) != 1:
        raise TypeError("baseline_take needs exactly one of cis, service or environment")
    ensure_allowed(perms.permission_problem(actor, perms.ADD_BASELINE, f"take baseline {name!r}"))
    reason = bounded_text(reason, "the reason")
    if service is not None:
        members, scope = ConfigurationItem.objects.filter(service=service), f"service {service.name}"
    elif environment is not None:
        members, scope = ConfigurationItem.objects.filter(environment=environment), f"environment {environment.name}"
    else:
        ids = {ci.pk for ci in cis}
        members, scope = ConfigurationItem.objects.filter(pk__in=ids), f"{len(ids)} selected CIs"
    baseline = Baseline(name=name, scope=scope, taken_by=actor, reason=reason)
    _save_new(baseline)
    BaselineItem.objects.bulk_create(
        BaselineItem(
            baseline=baseline,
            ci_id=ci.pk,
            ci_name=ci.name,
            environment_name=ci.environment.name,
            service_name=ci.service.name if ci.service else "",
            ci_type=ci.ci_type,
            state=ci.state,
            version=ci.version,
            attributes=ci.attributes,
        )
        for ci in members.select_related("environment", "service")
    )
    transition_record(actor=actor, target=baseline, action="baseline.create", reason=reason)
    return baseline


# --- import -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    created: list[ConfigurationItem]
    updated: list[ConfigurationItem]
    unchanged: list[ConfigurationItem]
    relationships_added: list[Relationship]


def _import_ci(planned: PlannedCi, actor: User | None) -> bool:
    """Write one CI of an import, recorded like the same edit and transition made by hand; whether anything
    changed.
    """
    ci = planned.ci
    if planned.is_new:
        ci.save()
        transition_record(
            actor=actor, target=ci, action="ci.create", to_state=ci.state, changes=planned.changes, reason="import"
        )
        return True
    if not (planned.changes or planned.transition):
        return False
    if planned.changes:
        save(ci, update_fields=[*planned.changes, "updated"])
        transition_record(actor=actor, target=ci, action="ci.update", changes=planned.changes, reason="import")
    if planned.transition:
        if planned.transition == CiTransition.RETIRE and (dependents := _live_dependents_named(ci)):
            problem = f"{ci.name} cannot retire: live CIs still depend on it: {dependents}"
            raise ImportFailed([ImportProblem(planned.row.where, problem)])
        from_state, to_state = apply_transition(ci, planned.transition.value)
        save(ci, update_fields=["state", "updated"])
        transition_record(
            actor=actor,
            target=ci,
            action=f"ci.{planned.transition.value}",
            from_state=from_state,
            to_state=to_state,
            reason="import",
        )
    return True


def _import_relationships(plan: ImportPlan, actor: User | None) -> list[Relationship]:
    """Add the relationships of an import that do not exist yet (an import never removes one)."""
    cis = {**plan.referenced, **{planned.row.key: planned.ci for planned in plan.cis}}
    sources = {cis[wanted.source] for wanted in plan.relationships}
    existing = set(Relationship.objects.filter(source__in=sources).values_list("source_id", "target_id", "kind"))
    added = []
    for wanted in plan.relationships:
        source, target = cis[wanted.source], cis[wanted.target]
        if (source.pk, target.pk, wanted.kind) in existing:
            continue
        relationship = Relationship.objects.create(source=source, target=target, kind=wanted.kind)
        existing.add((source.pk, target.pk, wanted.kind))
        transition_record(actor=actor, target=relationship, action="relationship.create", reason="import")
        added.append(relationship)
    return added


@transaction.atomic
def ci_import(*, source: str, file_format: ImportFormat | str, actor: User | None) -> ImportResult:
    """Creates or updates the CIs of a file (see ``cmdb.importing`` for its format), all or nothing.

    Every row is checked first and every problem reported with its place (``ImportFailed``); only a
    file without problems is written. Importing the same file again changes nothing.
    """
    ensure_allowed(perms.permission_problem(actor, perms.IMPORT_CIS, "import CIs"))
    plan = import_plan(source, file_format, actor=actor)
    created, updated, unchanged = [], [], []
    for planned in plan.cis:
        was_new = planned.is_new
        changed = _import_ci(planned, actor)
        (created if was_new else updated if changed else unchanged).append(planned.ci)
    relationships_added = _import_relationships(plan, actor)
    return ImportResult(created=created, updated=updated, unchanged=unchanged, relationships_added=relationships_added)
