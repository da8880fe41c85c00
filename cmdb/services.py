"""Every write to the CMDB. Each service is one transaction: it checks who may, re-reads what it changes
under a row lock, refuses with a ``cmdb.exceptions`` error, and records an audit event.

``actor`` is the user acting, or None when RDM acts on its own authority (a task after a deployment);
requests always pass their user. Bad field values raise Django's ``ValidationError``.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Model
from django.utils.text import slugify
from django_fsm import can_proceed

from cmdb import permissions as perms
from cmdb.choices import CiState, CiTransition, CiType, Criticality, EnvironmentTier, ImportFormat, RelationshipKind
from cmdb.exceptions import IllegalTransition, NotAllowed
from cmdb.importing import ImportPlan, PlannedCi, import_plan
from cmdb.models import Baseline, BaselineItem, ConfigurationItem, Environment, Relationship, Service
from rdm_site.audit import audit_record
from rdm_site.changes import apply_changes, audit_value

ENVIRONMENT_FIELDS = ("name", "slug", "tier", "promotion_order", "description")
SERVICE_FIELDS = ("name", "slug", "description", "owner", "criticality")  # and stakeholders, a set
CI_FIELDS = ("name", "ci_type", "version", "attributes", "owner", "environment", "service")


def _ensure(problem: str | None) -> None:
    if problem:
        raise NotAllowed(problem)


def _save_new(instance: Model) -> None:
    instance.full_clean()
    instance.save()


def _save_changes(instance: Model, changes: dict[str, list[Any]]) -> None:
    """Save only what changed (and the row's "updated" stamp, when it has one)."""
    instance.full_clean()
    stamps = [f.name for f in instance._meta.concrete_fields if getattr(f, "auto_now", False)]
    instance.save(update_fields=[*changes, *stamps])


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
    _ensure(perms.permission_problem(actor, perms.ADD_ENVIRONMENT, f"create environment {name!r}"))
    environment = Environment(
        name=name, slug=slug or slugify(name), tier=tier, promotion_order=promotion_order, description=description
    )
    _save_new(environment)
    audit_record(actor=actor, action="environment.create", target=environment)
    return environment


@transaction.atomic
def environment_update(*, environment: Environment, actor: User | None, data: dict[str, Any]) -> Environment:
    """Renaming or reordering environments changes every release's path; the trail keeps what it was."""
    _ensure(perms.permission_problem(actor, perms.CHANGE_ENVIRONMENT, f"change environment {environment.name!r}"))
    environment = Environment.objects.select_for_update().get(pk=environment.pk)
    if changes := apply_changes(environment, data, ENVIRONMENT_FIELDS):
        _save_changes(environment, changes)
        audit_record(actor=actor, action="environment.edit", target=environment, changes=changes)
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
    _ensure(perms.permission_problem(actor, perms.ADD_SERVICE, f"create service {name!r}"))
    service = Service(
        name=name, slug=slug or slugify(name), owner=owner, criticality=criticality, description=description
    )
    _save_new(service)
    service.stakeholders.set(stakeholders)
    audit_record(actor=actor, action="service.create", target=service)
    return service


@transaction.atomic
def service_update(*, service: Service, actor: User | None, data: dict[str, Any]) -> Service:
    """A new owner hands over the right to edit the service's CIs; the trail says who held it when."""
    _ensure(perms.permission_problem(actor, perms.CHANGE_SERVICE, f"change service {service.name!r}"))
    service = Service.objects.select_for_update().get(pk=service.pk)
    data = dict(data)
    stakeholders = data.pop("stakeholders", None)
    if changes := apply_changes(service, data, SERVICE_FIELDS):
        _save_changes(service, changes)
    if stakeholders is not None:
        before, after = set(service.stakeholders.all()), set(stakeholders)
        if before != after:
            changes["stakeholders"] = [sorted(map(audit_value, before)), sorted(map(audit_value, after))]
            service.stakeholders.set(after)
    if changes:
        audit_record(actor=actor, action="service.edit", target=service, changes=changes)
    return service


# --- configuration items ----------------------------------------------------------------------


def _ci_for_update(ci: ConfigurationItem) -> ConfigurationItem:
    """The CI as the database holds it now, locked until the transaction ends."""
    locked = ConfigurationItem.objects.select_for_update(of=("self",)).select_related("environment", "service__owner")
    return locked.get(pk=ci.pk)


def _ensure_may_change_ci(actor: User | None, ci: ConfigurationItem, permission: str, attempt: str) -> None:
    _ensure(perms.permission_problem(actor, permission, attempt) or perms.ownership_problem(actor, ci.service, attempt))


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
    _ensure(perms.permission_problem(actor, perms.ADD_CI, attempt) or perms.ownership_problem(actor, service, attempt))
    ci = ConfigurationItem(
        name=name,
        environment=environment,
        ci_type=ci_type,
        service=service,
        owner=owner,
        version=version,
        attributes=attributes or {},
        state=state,
    )
    _save_new(ci)
    audit_record(actor=actor, action="ci.create", target=ci, to_state=ci.state)
    return ci


@transaction.atomic
def ci_update(
    *, ci: ConfigurationItem, actor: User | None, data: dict[str, Any], reason: str = ""
) -> ConfigurationItem:
    """Edits a CI's fields (never its state: that moves only through ``ci_transition``).

    Service Owners may edit CIs of their own services, and may not move a CI into someone else's.
    Returns the fresh CI; ``data`` is applied to the row as it is now, not to the caller's copy.
    """
    ci = _ci_for_update(ci)
    _ensure_may_change_ci(actor, ci, perms.CHANGE_CI, f"change CI {ci}")
    new_service = data.get("service", ci.service)
    if new_service != ci.service:
        _ensure(perms.ownership_problem(actor, new_service, f"move CI {ci} to service {new_service}"))
    if changes := apply_changes(ci, data, CI_FIELDS):
        _save_changes(ci, changes)
        audit_record(actor=actor, action="ci.edit", target=ci, reason=reason, changes=changes)
    return ci


def _run_transition(ci: ConfigurationItem, transition: CiTransition) -> None:
    method = getattr(ci, transition.value)
    if not can_proceed(method):
        sources = " or ".join(ConfigurationItem.transition_sources(transition))
        raise IllegalTransition(
            ci,
            transition.value,
            ci.state,
            detail=f"CI {ci} cannot {transition.value} ({transition.label.lower()}): it is {ci.state}, "
            f"and {transition.value} starts only from {sources}.",
        )
    method()


@transaction.atomic
def ci_transition(
    *, ci: ConfigurationItem, transition: CiTransition | str, actor: User | None, reason: str = ""
) -> ConfigurationItem:
    """Moves a CI through its lifecycle (build, go_live, start_maintenance, end_maintenance, retire).

    The CI is re-read under lock, so two people pressing "go live" at once give one transition and one
    ``IllegalTransition``. Returns the fresh CI.
    """
    transition = CiTransition(transition)
    ci = _ci_for_update(ci)
    _ensure_may_change_ci(actor, ci, perms.CHANGE_CI, f"{transition.value} CI {ci}")
    from_state = ci.state
    _run_transition(ci, transition)
    ci.save(update_fields=["state", "updated"])
    audit_record(
        actor=actor, action="ci.transition", target=ci, from_state=from_state, to_state=ci.state, reason=reason
    )
    return ci


# --- relationships ----------------------------------------------------------------------------


def _relationship_change(relationship: Relationship, *, added: bool) -> dict[str, list[Any]]:
    fact = f"{relationship.get_kind_display()} {relationship.target}"
    return {"relationships": [None, fact] if added else [fact, None]}


@transaction.atomic
def relationship_add(
    *, source: ConfigurationItem, target: ConfigurationItem, kind: RelationshipKind | str, actor: User | None
) -> Relationship:
    """States that ``source`` <kind> ``target``. It is a fact about the source (what it needs, runs on,
    belongs to), so whoever may edit the source may state it, even when the target is another's.
    """
    _ensure_may_change_ci(actor, source, perms.ADD_RELATIONSHIP, f"add a relationship to CI {source}")
    relationship = Relationship(source=source, target=target, kind=kind)
    _save_new(relationship)
    audit_record(
        actor=actor,
        action="ci.relationship_add",
        target=source,
        changes=_relationship_change(relationship, added=True),
    )
    return relationship


@transaction.atomic
def relationship_remove(*, relationship: Relationship, actor: User | None) -> None:
    """Removes a relationship; like adding one, it is the source CI's editors' call."""
    source = relationship.source
    _ensure_may_change_ci(actor, source, perms.DELETE_RELATIONSHIP, f"remove a relationship of CI {source}")
    audit_record(
        actor=actor,
        action="ci.relationship_remove",
        target=source,
        changes=_relationship_change(relationship, added=False),
    )
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
    _ensure(perms.permission_problem(actor, perms.ADD_BASELINE, f"take baseline {name!r}"))
    if service is not None:
        members, scope = ConfigurationItem.objects.filter(service=service), f"service {service.name}"
    elif environment is not None:
        members, scope = ConfigurationItem.objects.filter(environment=environment), f"environment {environment.name}"
    else:
        ids = {ci.pk for ci in cis}
        members, scope = ConfigurationItem.objects.filter(pk__in=ids), f"{len(ids)} selected CIs"
    baseline = Baseline.objects.create(name=name, scope=scope, taken_by=actor, reason=reason)
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
    audit_record(actor=actor, action="baseline.take", target=baseline, reason=reason)
    return baseline


# --- import -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    created: list[ConfigurationItem]
    updated: list[ConfigurationItem]
    unchanged: list[ConfigurationItem]
    relationships_added: list[Relationship]


def _import_ci(planned: PlannedCi, actor: User | None) -> bool:
    """Write one CI of an import; whether anything changed."""
    ci, from_state = planned.ci, planned.ci.state
    if planned.transition:
        _run_transition(ci, planned.transition)
    if planned.is_new:
        ci.save()
        audit_record(actor=actor, action="ci.import", target=ci, to_state=ci.state, changes=planned.changes)
        return True
    if not (planned.changes or planned.transition):
        return False
    ci.save(update_fields=[*planned.changes, "state", "updated"])
    if planned.changes:
        audit_record(actor=actor, action="ci.import", target=ci, changes=planned.changes)
    if planned.transition:
        audit_record(
            actor=actor, action="ci.transition", target=ci, from_state=from_state, to_state=ci.state, reason="import"
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
        changes = _relationship_change(relationship, added=True)
        audit_record(actor=actor, action="ci.relationship_add", target=source, changes=changes)
        added.append(relationship)
    return added


@transaction.atomic
def ci_import(*, source: str, file_format: ImportFormat | str, actor: User | None) -> ImportResult:
    """Creates or updates the CIs of a file (see ``cmdb.importing`` for its format), all or nothing.

    Every row is checked first and every problem reported with its place (``ImportFailed``); only a
    file without problems is written. Importing the same file again changes nothing.
    """
    _ensure(perms.permission_problem(actor, perms.IMPORT_CIS, "import CIs"))
    plan = import_plan(source, file_format, actor=actor)
    created, updated, unchanged = [], [], []
    for planned in plan.cis:
        was_new = planned.is_new
        changed = _import_ci(planned, actor)
        (created if was_new else updated if changed else unchanged).append(planned.ci)
    relationships_added = _import_relationships(plan, actor)
    return ImportResult(created=created, updated=updated, unchanged=unchanged, relationships_added=relationships_added)
