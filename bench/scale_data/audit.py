"""The audit trail: a year of events in one valid hash chain."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models

from bench.scale_data.base import Copier, DatabaseNotEmpty, Year, as_json, weighted
from bench.scale_data.tables import AUDIT_ROLES, AUDIT_SHARES, AUDIT_STORIES, YEAR
from rdm_site.choices import ActorKind
from rdm_site.models import GENESIS_HASH, AuditEvent


def audit_generate(year: Year, copier: Copier) -> str:
    """``audit_events`` transitions and edits spread evenly over the year, each naming a record created
    before it, chained exactly as ``rdm_site.audit.audit_record`` chains them. Returns the head hash."""
    sizes, rng = year.sizes, year.rng
    counts = {
        "releases.release": sizes.releases,
        "releases.changerecord": sizes.changes,
        "deployments.deployment": len(year.deployment_waves),
        "deployments.incident": sizes.incidents,
        "cmdb.configurationitem": sizes.cis,
    }
    kind = weighted(rng, AUDIT_SHARES)
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
            users = year.role_users[AUDIT_ROLES[object_type]]
            system = object_type == "deployments.deployment" and rng.random() < 0.5
            event.id = eid
            event.occurred_at = year.start + step * (eid - 0.5)
            event.actor_id = None if system else users[eid % len(users)]
            event.actor_label = "system" if system else year.usernames[event.actor_id]
            event.actor_kind = ActorKind.SYSTEM.value if system else ActorKind.USER.value
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
                as_json(getattr(event, name)) if name in json_columns else getattr(event, name) for name in columns
            )

    copier.copy(AuditEvent, columns, rows())
    return head["hash"]
