"""One record of every transition and significant edit of a governed record: the audit event and its outbox row.

Both are written in the caller's transaction, so the outside (webhooks, live pages) hears of a transition
exactly when it is committed. Actions read ``<entity>.<verb>``: the transition's name (``release.submit``),
or ``create``, ``update`` and ``delete`` for edits.
"""

from django.contrib.auth.models import User
from django.db import models

from rdm_site.audit import audit_append, audit_event_prepare
from rdm_site.models import AuditEvent, OutboxEvent


def transition_record(
    *,
    actor: User | None,
    target: models.Model,
    action: str,
    from_state: str = "",
    to_state: str = "",
    reason: str = "",
    changes: dict | None = None,
    object_repr: str = "",
) -> AuditEvent:
    """Audit ``action`` on ``target`` and put it in the outbox, inside the caller's transaction."""
    record = {
        "actor": actor,
        "target": target,
        "action": action,
        "from_state": from_state,
        "to_state": to_state,
        "reason": reason,
        "changes": changes,
        "object_repr": object_repr,
    }
    return transitions_record([record])[0]


def transitions_record(records: list[dict]) -> list[AuditEvent]:
    """Many ``transition_record`` (each a dict of its arguments) at the cost of about one: the audit events in
    one append, their outbox rows in one insert."""
    for record in records:
        entity, _, verb = record["action"].partition(".")
        if not entity or not verb or verb == "edit":
            raise ValueError(f"an action reads '<entity>.<verb>' (edits are '.update'), not {record['action']!r}")
    events = audit_append([audit_event_prepare(**record) for record in records])
    OutboxEvent.objects.bulk_create(
        OutboxEvent(
            audit_event=event,
            event_type=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            occurred_at=event.occurred_at,
        )
        for event in events
    )
    return events
