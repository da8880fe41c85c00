"""The last steps of every transition service: move the state, save, and write the one transition record."""

from django.contrib.auth.models import User
from django.db import models

from rdm_site.domain import apply_transition, save
from rdm_site.transitions import transition_record


def state_move(
    record: models.Model,
    transition: str,
    *,
    actor: User | None,
    entity: str,
    reason: str = "",
    changes: dict | None = None,
    **arguments,
) -> models.Model:
    """Call ``transition`` on the locked ``record`` (with ``arguments``), save it, and record
    ``<entity>.<transition>`` with both states (and the fields set with it, ``changes``), in the caller's
    transaction.
    """
    before, after = apply_transition(record, transition, **arguments)
    save(record)
    transition_record(
        actor=actor,
        action=f"{entity}.{transition}",
        target=record,
        from_state=before,
        to_state=after,
        reason=reason,
        changes=changes,
    )
    return record
