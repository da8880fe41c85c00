"""Field edits as the audit trail records them: ``{field: [old, new]}``."""

from typing import Any

from django.db.models import Model


def audit_value(value: Any) -> Any:
    """A related object is recorded by its name, so the trail reads well and survives the object."""
    return str(value) if isinstance(value, Model) else value


def apply_changes(instance: Model, data: dict[str, Any], editable: tuple[str, ...]) -> dict[str, list[Any]]:
    """Set on ``instance`` the values of ``data`` that differ from its own; return what changed."""
    refused = sorted(set(data) - set(editable))
    if refused:
        raise TypeError(f"{type(instance).__name__} fields {refused} cannot be edited; editable: {list(editable)}")
    changes = {}
    for name, new in data.items():
        old = getattr(instance, name)
        if old != new:
            changes[name] = [audit_value(old), audit_value(new)]
            setattr(instance, name, new)
    return changes
