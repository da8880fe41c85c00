"""The audit trail: the one way to record an event, and the check that the chain is intact.

Appends are serialised by a transaction-level advisory lock, so each event links to the one
committed just before it and the chain never forks. The lock is held until the caller's
transaction ends: record the event late in a service, after the slow work. Callers must
use READ COMMITTED (Django's default), so that the read after the lock sees the last commit.
"""

import json
from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from rdm_site.choices import ActorKind
from rdm_site.middleware import current_request_id
from rdm_site.models import GENESIS_HASH, AuditEvent
from rdm_site.selectors import audit_events_in_id_order

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
    if target is not None:
        if object_type or object_id:
            raise ValueError("pass either target or object_type/object_id, not both")
        object_type, object_id = AuditEvent.reference_to(target)
        object_repr = object_repr or str(target)
    event = AuditEvent(
        **_actor_fields(actor),
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr[: AuditEvent._meta.get_field("object_repr").max_length],
        from_state=from_state,
        to_state=to_state,
        reason=reason[:AUDIT_REASON_MAX_LENGTH],
        request_id=current_request_id.get(),
    )
    with transaction.atomic(), connection.cursor() as cursor:
        event.changes = _as_stored_by_jsonb(changes or {}, cursor)
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_CHAIN_LOCK_KEY])
        event.occurred_at = timezone.now()  # after the lock, so that times rise with ids
        event.previous_hash = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS_HASH
        event.hash = event.compute_hash()
        event.save(force_insert=True)
    return event


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


def _as_stored_by_jsonb(changes: dict, cursor) -> dict:
    """``changes`` exactly as jsonb will give it back (numbers normalised, duplicate keys dropped).

    The hash is computed before the row is written and recomputed from the row when verifying;
    both must see the same value, or an honest row would look altered.
    """
    cursor.execute("SELECT %s::jsonb::text", [json.dumps(changes, cls=DjangoJSONEncoder)])
    return json.loads(cursor.fetchone()[0])


@dataclass(frozen=True)
class ChainReport:
    """The outcome of walking the chain.

    ``events`` counts the intact events walked; ``problem`` names the first break, or is empty;
    ``head_hash`` is the hash of the last intact event. Removing the newest events leaves a
    shorter chain that is still intact: no chain can show that. Keep ``head_hash`` from each run
    somewhere else and compare, to detect it. ``id_gaps`` lists skipped ids (at most ``MAX_ID_GAP_HINTS``):
    a hint, not proof, since a rolled-back transaction also consumes ids.
    """

    events: int
    problem: str = ""
    problem_event_id: int | None = None
    head_hash: str = GENESIS_HASH
    id_gaps: tuple[tuple[int, int], ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problem


def audit_chain_verify() -> ChainReport:
    """Walk every event in id order and report the first altered or missing one.

    A row rewritten together with a recomputed hash of its own shows as event(s) missing after it.
    """
    previous_id, previous_hash, count, gaps = None, GENESIS_HASH, 0, []
    for event in audit_events_in_id_order():
        if previous_id is not None and event.id != previous_id + 1 and len(gaps) < MAX_ID_GAP_HINTS:
            gaps.append((previous_id, event.id))
        if event.compute_hash() != event.hash:
            return ChainReport(count, f"event #{event.id} was altered", event.id, previous_hash, tuple(gaps))
        if event.previous_hash != previous_hash:
            where = f"between #{previous_id} and #{event.id}" if previous_id is not None else f"before #{event.id}"
            return ChainReport(count, f"event(s) missing {where}", event.id, previous_hash, tuple(gaps))
        previous_id, previous_hash, count = event.id, event.hash, count + 1
    return ChainReport(count, head_hash=previous_hash, id_gaps=tuple(gaps))
