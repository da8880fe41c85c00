"""The audit trail: the one way to record an event, the anchors that note its head, and the check that the
chain is intact.

Appends are serialised by a transaction-level advisory lock, so each event links to the one
committed just before it and the chain never forks. The lock is held until the caller's
transaction ends: record the event late in a service, after the slow work. Callers must
use READ COMMITTED (Django's default), so that the read after the lock sees the last commit.
"""

import json
import logging
from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from rdm_site.choices import ActorKind
from rdm_site.middleware import current_request_id
from rdm_site.models import GENESIS_HASH, AuditAnchor, AuditEvent
from rdm_site.selectors import audit_events_in_id_order

logger = logging.getLogger(__name__)

# An arbitrary key that nothing else in RDM uses for pg_advisory locks.
AUDIT_CHAIN_LOCK_KEY = 0x52444D5F41554454  # "RDM_AUDT"
MAX_ID_GAP_HINTS = 10
# A safety net: services refuse longer reasons typed by people (rdm_site.domain.REASON_MAX_LENGTH);
# what RDM writes itself (a target's error message) is cut here rather than refused.
AUDIT_REASON_MAX_LENGTH = 4000


def audit_record(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    target: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    from_state: str = "",
    to_state: str = "",
    reason: str = "",
    changes: dict | None = None,
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction (rolled back with it).

    ``actor`` is the user who acted (an ``Actor`` with a token is recorded with it), or None for RDM
    itself. ``target`` names the object; pass ``object_type``/``object_id`` instead only for something
    that is not a saved model instance. ``object_repr`` defaults to ``str(target)``, truncated to fit.
    """
    event = audit_event_prepare(
        actor=actor,
        action=action,
        target=target,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr,
        from_state=from_state,
        to_state=to_state,
        reason=reason,
        changes=changes,
    )
    return audit_append([event])[0]


def audit_event_prepare(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    target: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    from_state: str = "",
    to_state: str = "",
    reason: str = "",
    changes: dict | None = None,
) -> AuditEvent:
    """An event as ``audit_record`` takes it, not yet chained nor saved: give a list of them to ``audit_append``."""
    if target is not None:
        if object_type or object_id:
            raise ValueError("pass either target or object_type/object_id, not both")
        object_type, object_id = AuditEvent.reference_to(target)
        object_repr = object_repr or str(target)
    return AuditEvent(
        **_actor_fields(actor),
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr[: AuditEvent._meta.get_field("object_repr").max_length],
        from_state=from_state,
        to_state=to_state,
        reason=reason[:AUDIT_REASON_MAX_LENGTH],
        changes=changes or {},
        request_id=current_request_id.get(),
    )


def audit_append(events: list[AuditEvent]) -> list[AuditEvent]:
    """Chain and save prepared events in their order, under one take of the chain's lock and in one insert,
    inside the caller's transaction: many events (a deployment's CIs) cost about what one does."""
    if not events:
        return []
    with transaction.atomic(), connection.cursor() as cursor:
        stored = _as_stored_by_jsonb([event.changes for event in events], cursor)
        for event, changes in zip(events, stored, strict=True):
            event.changes = changes
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_CHAIN_LOCK_KEY])
        occurred_at = timezone.now()  # after the lock, so that times rise with ids
        previous_hash = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS_HASH
        for event in events:
            event.occurred_at, event.previous_hash = occurred_at, previous_hash
            event.hash = previous_hash = event.compute_hash()
        AuditEvent.objects.bulk_create(events)  # one INSERT: ids are given in the list's order
    return events


def _actor_fields(actor: AbstractBaseUser | None) -> dict:
    """RDM itself, a user, or a user through an API token (named beside its owner, with its id)."""
    if actor is None:
        return {"actor_id": None, "actor_label": "system", "actor_kind": ActorKind.SYSTEM.value}
    if not isinstance(actor, AbstractBaseUser):
        raise TypeError(f"an audit actor is a user (or an Actor with a token) or None, not {type(actor).__name__}")
    token = getattr(actor, "token", None)
    if token is not None:
        label = f"{actor.get_username()} (token #{token.pk} {token.name!r})"
        return {"actor_id": actor.pk, "actor_label": label[:200], "actor_kind": ActorKind.TOKEN.value}
    return {"actor_id": actor.pk, "actor_label": actor.get_username(), "actor_kind": ActorKind.USER.value}


def _as_stored_by_jsonb(changes: list[dict], cursor) -> list[dict]:
    """Each ``changes`` exactly as jsonb will give it back (numbers normalised, duplicate keys dropped).

    The hash is computed before the row is written and recomputed from the row when verifying;
    both must see the same value, or an honest row would look altered.
    """
    texts = [json.dumps(item, cls=DjangoJSONEncoder) for item in changes]
    cursor.execute(
        "SELECT value::jsonb::text FROM unnest(%s::text[]) WITH ORDINALITY AS t(value, n) ORDER BY n", [texts]
    )
    return [json.loads(row[0]) for row in cursor.fetchall()]


@dataclass(frozen=True)
class ChainHead:
    """The newest event of the chain (``event_id`` None while the chain is empty) and how many events it holds."""

    event_id: int | None
    hash: str
    events: int


def audit_chain_head() -> ChainHead:
    """The head as the caller's transaction sees it (take the chain lock first for a head that cannot move)."""
    newest = AuditEvent.objects.order_by("-id").values_list("id", "hash").first()
    if newest is None:
        return ChainHead(None, GENESIS_HASH, 0)
    return ChainHead(newest[0], newest[1], AuditEvent.objects.count())


def audit_anchor_record() -> AuditAnchor | None:
    """Note the chain's head in the anchor table, unless it has not moved since the last anchor.

    Holding the chain lock, no event is appended while the head and the count are read, so they agree.
    The anchor is logged too, for a copy kept outside the database. A new anchor is refused (and the
    refusal logged as an error) while the last one no longer holds: anchoring the shortened chain would
    hide the loss. Not audited itself: that would move the head each time.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_CHAIN_LOCK_KEY])
        head = audit_chain_head()
        last = AuditAnchor.objects.order_by("-id").first()
        if head.event_id is None or (last is not None and last.event_id == head.event_id):
            return None
        problem = _anchor_problem(last) if last is not None else ""
        if problem:
            logger.error("audit anchor not recorded: %s", problem)
            return None
        anchor = AuditAnchor.objects.create(event_id=head.event_id, head_hash=head.hash, event_count=head.events)
    logger.info(
        "audit anchor #%s: event #%s, head %s, %s event(s)", anchor.pk, anchor.event_id, anchor.head_hash, head.events
    )
    return anchor


def _anchor_problem(anchor: AuditAnchor) -> str:
    """Why the chain no longer agrees with ``anchor`` (its event gone, altered, or events before it removed)."""
    name = f"anchor #{anchor.pk} at {anchor.recorded_at.isoformat(timespec='seconds')}"
    anchored_hash = AuditEvent.objects.filter(id=anchor.event_id).values_list("hash", flat=True).first()
    if anchored_hash is None:
        return f"the newest events were removed: {name} names event #{anchor.event_id}, which is gone"
    if anchored_hash != anchor.head_hash:
        return f"event #{anchor.event_id} is not the one {name} names: its hash differs"
    count = AuditEvent.objects.filter(id__lte=anchor.event_id).count()
    if count != anchor.event_count:
        return (
            f"events were removed: {name} counted {anchor.event_count} event(s) up to #{anchor.event_id}, "
            f"the chain now holds {count}"
        )
    return ""


@dataclass(frozen=True)
class ChainReport:
    """The outcome of walking the chain.

    ``events`` counts the intact events walked; ``problem`` names the first break, or is empty;
    ``head_hash`` is the hash of the last intact event. A chain alone cannot show that its newest
    events were removed: what is left is still intact. ``anchor`` is the last recorded anchor, checked
    once the walk is done: its event must still be there with the hash and the count it noted, so
    removing events up to it is a problem too. Events newer than the last anchor (recorded every
    ``RDM_AUDIT_ANCHOR_SECONDS``) are vouched for by none yet; anchors removed along with the events show
    only against the copies logged outside the database. ``id_gaps`` lists
    skipped ids (at most ``MAX_ID_GAP_HINTS``): a hint, not proof, since a rolled-back transaction also
    consumes ids.
    """

    events: int
    problem: str = ""
    problem_event_id: int | None = None
    head_hash: str = GENESIS_HASH
    id_gaps: tuple[tuple[int, int], ...] = ()
    anchor: AuditAnchor | None = None

    @property
    def ok(self) -> bool:
        return not self.problem


def audit_chain_verify() -> ChainReport:
    """Walk every event in id order and report the first altered or missing one, then check the last anchor.

    A row rewritten together with a recomputed hash of its own shows as event(s) missing after it; the
    newest events removed show against the anchor.
    """
    anchor = AuditAnchor.objects.order_by("-id").first()
    previous_id, previous_hash, count, gaps = None, GENESIS_HASH, 0, []
    for event in audit_events_in_id_order():
        if previous_id is not None and event.id != previous_id + 1 and len(gaps) < MAX_ID_GAP_HINTS:
            gaps.append((previous_id, event.id))
        if event.compute_hash() != event.hash:
            return ChainReport(count, f"event #{event.id} was altered", event.id, previous_hash, tuple(gaps), anchor)
        if event.previous_hash != previous_hash:
            where = f"between #{previous_id} and #{event.id}" if previous_id is not None else f"before #{event.id}"
            return ChainReport(count, f"event(s) missing {where}", event.id, previous_hash, tuple(gaps), anchor)
        previous_id, previous_hash, count = event.id, event.hash, count + 1
    problem = _anchor_problem(anchor) if anchor is not None else ""
    problem_event_id = anchor.event_id if problem else None
    return ChainReport(count, problem, problem_event_id, previous_hash, tuple(gaps), anchor)
