"""What satisfies the checklist's gates: rollback plans, attested evidence, stakeholder notices, baselines;
and what a release leaves behind: release notes and knowledge articles.
"""

from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction

from cmdb.models import Baseline, ConfigurationItem
from cmdb.services import baseline_take
from rdm_site.changes import apply_changes
from rdm_site.domain import (
    TEXT_MAX_LENGTH,
    bounded_text,
    ensure_allowed,
    ensure_conditions,
    locked,
    now,
    require_text,
    validated,
)
from rdm_site.notifications import notification_send
from rdm_site.transitions import transition_record
from releases import permissions as perms
from releases.checklist import STAKEHOLDER_NOTICE
from releases.choices import (
    ATTESTED_GATES,
    RELEASE_TERMINAL_STATES,
    BaselineKind,
    GateCode,
    KnowledgeKind,
)
from releases.exceptions import AlreadyDecided, IllegalTransition, InvalidInput
from releases.models import (
    GateEvidence,
    KnowledgeArticle,
    PostImplementationReview,
    Release,
    ReleaseBaseline,
    ReleasePackage,
    RollbackPlan,
)
from releases.selectors import release_current_package


def _ensure_not_over(release: Release, attempt: str) -> None:
    if release.state in RELEASE_TERMINAL_STATES:
        raise IllegalTransition(release, attempt, release.state)


# --- rollback plan --------------------------------------------------------------------------------


@transaction.atomic
def rollback_plan_write(*, release: Release, actor: User | None, steps: str) -> RollbackPlan:
    """Write (or rewrite) the rollback steps. Rewritten steps were not rehearsed: the rehearsal is cleared."""
    release = locked(release)
    ensure_allowed(perms.permission_problem(actor, perms.CHANGE_ROLLBACK_PLAN, f"write the rollback plan of {release}"))
    _ensure_not_over(release, "write the rollback plan of")
    steps = require_text(steps, "the rollback steps", max_length=TEXT_MAX_LENGTH)
    plan, created = RollbackPlan.objects.select_for_update().get_or_create(release=release)
    if plan.steps == steps:
        return plan
    changes = {"steps": [plan.steps, steps]}
    plan.steps, plan.written_by = steps, actor
    if plan.rehearsed_at is not None:
        changes["rehearsed_at"] = [plan.rehearsed_at.isoformat(), None]
        plan.rehearsed_at = plan.rehearsed_by = None
        plan.rehearsal_note = plan.rehearsal_link = ""
    validated(plan)
    plan.save()
    transition_record(
        actor=actor, action=f"rollback_plan.{'create' if created else 'update'}", target=plan, changes=changes
    )
    return plan


@transaction.atomic
def rollback_rehearsal_record(
    *, release: Release, actor: User | None, note: str = "", link: str = "", rehearsed_at: datetime | None = None
) -> RollbackPlan:
    """Record that the rollback steps were rehearsed, with a note or a link as evidence."""
    note = bounded_text(note, "the rehearsal note")
    release = locked(release)
    ensure_allowed(
        perms.permission_problem(actor, perms.CHANGE_ROLLBACK_PLAN, f"record a rollback rehearsal of {release}")
    )
    _ensure_not_over(release, "record a rollback rehearsal of")
    plan = RollbackPlan.objects.select_for_update().filter(release=release).first()
    problems = []
    if plan is None or not plan.documented:
        problems.append("write the rollback steps first")
    if not (note.strip() or link.strip()):
        problems.append("give a note or a link as evidence of the rehearsal")
    ensure_conditions("The rehearsal cannot be recorded", problems)
    plan.rehearsal_note, plan.rehearsal_link = note, link
    plan.rehearsed_at, plan.rehearsed_by = rehearsed_at or now(), actor
    validated(plan)
    plan.save()
    transition_record(actor=actor, action="rollback_plan.rehearse", target=plan, reason=note or link)
    return plan


# --- attested gates -------------------------------------------------------------------------------


@transaction.atomic
def gate_evidence_record(
    *,
    release: Release,
    actor: User | None,
    gate: GateCode | str = GateCode.BACKUPS_VERIFIED,
    note: str = "",
    link: str = "",
    tool: str = "",
) -> GateEvidence:
    """Post evidence for an attested gate (a person, or a tool naming itself through its owner's token)."""
    note = bounded_text(note, "the evidence note")
    release = locked(release)
    ensure_allowed(perms.permission_problem(actor, perms.ADD_GATE_EVIDENCE, f"post gate evidence for {release}"))
    _ensure_not_over(release, "post gate evidence for")
    problems = []
    if gate not in ATTESTED_GATES:
        problems.append(f"{gate!r} is computed from the records, not attested")
    if not (note.strip() or link.strip()):
        problems.append("give a note or a link")
    if actor is None and not tool.strip():
        problems.append("name the person or the tool that posts the evidence")
    if problems:
        raise InvalidInput(f"The evidence cannot be recorded: {'; '.join(problems)}.", problems)
    evidence = GateEvidence(release=release, gate=gate, note=note, link=link, recorded_by=actor, recorded_by_tool=tool)
    validated(evidence)
    evidence.save()
    transition_record(actor=actor, action="gate_evidence.record", target=release, reason=f"{gate}: {note or link}")
    return evidence


@transaction.atomic
def gate_evidence_verify(*, evidence: GateEvidence, actor: User) -> GateEvidence:
    """A second person confirms the evidence (never the one who posted it)."""
    evidence = locked(evidence)
    attempt = f"verify evidence {evidence}"
    ensure_allowed(perms.permission_problem(actor, perms.VERIFY_GATE_EVIDENCE, attempt))
    ensure_allowed(*perms.sod_problems(actor, attempt, recorded=evidence.recorded_by))
    if evidence.verified_at is not None:
        raise AlreadyDecided(f"Evidence {evidence} was verified by {evidence.verified_by} already.")
    evidence.verified_by, evidence.verified_at = actor, now()
    evidence.save(update_fields=["verified_by", "verified_at"])
    transition_record(actor=actor, action="gate_evidence.verify", target=evidence.release, reason=str(evidence))
    return evidence


# --- communication --------------------------------------------------------------------------------


@transaction.atomic
def stakeholders_notify(*, release: Release, actor: User | None, message: str = "") -> list:
    """Send the communication notice to every stakeholder of the release's services (the plan's gate)."""
    message = bounded_text(message, "the message", max_length=TEXT_MAX_LENGTH)
    release = locked(release)
    ensure_allowed(perms.permission_problem(actor, perms.NOTIFY_STAKEHOLDERS, f"notify the stakeholders of {release}"))
    _ensure_not_over(release, "notify the stakeholders of")
    services = list(release.services.prefetch_related("stakeholders"))
    stakeholders = {user.pk: user for service in services for user in service.stakeholders.all()}
    problems = [] if stakeholders else [f"no stakeholder is listed for {', '.join(s.name for s in services) or 'it'}"]
    ensure_conditions(f"Nobody to notify about {release}", problems)
    when = (
        f"{release.planned_start:%Y-%m-%d %H:%M %Z} to {release.planned_end:%Y-%m-%d %H:%M %Z}"
        if release.planned_start and release.planned_end
        else "dates to be announced"
    )
    body = "\n\n".join(
        part
        for part in (
            f"{release.get_release_type_display()} release of {', '.join(s.name for s in services)}: {when}.",
            release.description,
            message,
        )
        if part
    )
    return notification_send(
        recipients=stakeholders.values(),
        kind=STAKEHOLDER_NOTICE,
        subject=f"Release {release}: {when}",
        body=body,
        target=release,
        link=release.get_absolute_url(),
        actor=actor,
    )


# --- CMDB -----------------------------------------------------------------------------------------


@transaction.atomic
def release_baseline_take(
    *, release: Release, actor: User | None, kind: BaselineKind | str = BaselineKind.PRE_RELEASE
) -> ReleaseBaseline:
    """Snapshot the CIs the release's units change (before the deployment, and after it) and link it: Release
    Managers, or RDM itself after a production deployment.
    """
    release = locked(release)
    kind = BaselineKind(kind)
    ensure_allowed(
        perms.permission_problem(actor, perms.CHANGE_RELEASE, f"take a {kind.label.lower()} baseline of {release}")
    )
    _ensure_not_over(release, f"take a {kind.label.lower()} baseline of")
    cis = list(ConfigurationItem.objects.filter(release_units__release=release).distinct())
    ensure_conditions(
        f"No {kind.label.lower()} baseline of {release}", [] if cis else ["no unit of the release names a CI"]
    )
    baseline = baseline_take(
        name=f"{release} {kind.label.lower()}",
        actor=actor,
        reason=f"{kind.label} baseline of release {release}",
        cis=cis,
    )
    link = ReleaseBaseline.objects.create(release=release, baseline=baseline, kind=kind)
    transition_record(actor=actor, action="release.baseline_link", target=release, reason=f"{kind.label}: {baseline}")
    return link


@transaction.atomic
def release_baseline_link(
    *, release: Release, actor: User | None, baseline: Baseline, kind: BaselineKind | str = BaselineKind.PRE_RELEASE
) -> ReleaseBaseline:
    """Link a baseline taken in the CMDB (e.g. a scheduled snapshot) to the release, as its pre- or post-release one."""
    release = locked(release)
    kind = BaselineKind(kind)
    ensure_allowed(perms.permission_problem(actor, perms.CHANGE_RELEASE, f"link a baseline to release {release}"))
    _ensure_not_over(release, f"link a {kind.label.lower()} baseline to")
    link, created = ReleaseBaseline.objects.get_or_create(release=release, baseline=baseline, defaults={"kind": kind})
    if created:
        transition_record(
            actor=actor, action="release.baseline_link", target=release, reason=f"{kind.label}: {baseline}"
        )
    return link


# --- release notes and knowledge ------------------------------------------------------------------


def _notes_text(release: Release) -> str:
    lines = [f"# {release.name} {release.version}", ""]
    if release.description:
        lines += [release.description.strip(), ""]
    units = list(release.units.prefetch_related("configuration_items"))
    if units:
        lines.append("## Components")
        for unit in units:
            cis = ", ".join(ci.name for ci in unit.configuration_items.all()) or "no CI named"
            irreversible = "" if unit.reversible else " — irreversible"
            version = f" {unit.version}" if unit.version else ""
            lines.append(f"- {unit.name}{version} ({unit.get_kind_display().lower()}; changes {cis}){irreversible}")
        lines.append("")
    package = release_current_package(release)
    if package is not None:
        lines.append(f"## Build {package.version}")
        if package.work_items:
            lines.append("Work items: " + ", ".join(package.work_items))
        for commit in package.commits:
            message = (commit.get("message") or "").splitlines()
            author = f" ({commit['author']})" if commit.get("author") else ""
            lines.append(f"- {str(commit['sha'])[:10]} {message[0] if message else ''}{author}".rstrip())
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


@transaction.atomic
def release_notes_build(*, release: Release, actor: User | None) -> Release:
    """Generate the release notes from the units and the current package's commits and work items."""
    release = locked(release)
    ensure_allowed(
        perms.any_permission_problem(
            actor, [perms.CHANGE_RELEASE, perms.REGISTER_PACKAGE], f"build the release notes of {release}"
        )
    )
    text = _notes_text(release)
    if text != release.release_notes:
        release.release_notes = text
        release.save(update_fields=["release_notes", "updated"])
        transition_record(actor=actor, action="release.notes_build", target=release)
    return release


@transaction.atomic
def knowledge_article_create(
    *,
    actor: User,
    title: str,
    body: str,
    kind: KnowledgeKind | str,
    service,
    release: Release | None = None,
    package: ReleasePackage | None = None,
    configuration_items: Iterable[ConfigurationItem] = (),
    review: PostImplementationReview | None = None,
) -> KnowledgeArticle:
    """Write down a runbook, rollback steps or a lesson learned, for a service (and the package it is for, the
    CIs it concerns, the release and review it came from).
    """
    ensure_allowed(perms.permission_problem(actor, perms.ADD_KNOWLEDGE_ARTICLE, "write a knowledge article"))
    article = KnowledgeArticle(
        title=require_text(title, "a title"),
        body=require_text(body, "the article's text", max_length=TEXT_MAX_LENGTH),
        kind=kind,
        service=service,
        release=release,
        package=package,
        review=review,
        author=actor,
    )
    validated(article)
    article.save()
    article.configuration_items.set(list(configuration_items))
    transition_record(actor=actor, action="knowledge_article.create", target=article)
    return article


KNOWLEDGE_EDITABLE_FIELDS = ("title", "body", "kind", "service", "release", "package", "configuration_items")


@transaction.atomic
def knowledge_article_update(*, article: KnowledgeArticle, actor: User | None, data: dict) -> KnowledgeArticle:
    """Improve an article; the trail keeps what it said before."""
    article = locked(article)
    ensure_allowed(perms.permission_problem(actor, perms.CHANGE_KNOWLEDGE_ARTICLE, f"edit knowledge article {article}"))
    changes = apply_changes(article, data, KNOWLEDGE_EDITABLE_FIELDS)
    if changes:
        validated(article)
        article.save()
        transition_record(actor=actor, action="knowledge_article.update", target=article, changes=changes)
    return article


__all__ = [
    "gate_evidence_record",
    "gate_evidence_verify",
    "knowledge_article_create",
    "knowledge_article_update",
    "release_baseline_link",
    "release_baseline_take",
    "release_notes_build",
    "rollback_plan_write",
    "rollback_rehearsal_record",
    "stakeholders_notify",
]
