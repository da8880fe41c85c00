"""Field edits as every update service applies and audits them: ``{field: [old, new]}``."""

from typing import Any

from django.db.models import Model

from rdm_site.exceptions import InvalidInput


def audit_value(value: Any) -> Any:
    """A related object is recorded by its name, so the trail reads well and survives the object."""
    if isinstance(value, Model):
        return str(value)
    if isinstance(value, list | tuple | set | frozenset):
        return sorted(str(item) for item in value)
    return value


def apply_changes(instance: Model, data: dict[str, Any], editable: tuple[str, ...]) -> dict[str, list[Any]]:
    """Set on ``instance`` the values of ``data`` that differ from its own; return what changed.

    Many-to-many fields are compared by their members and set at once (``instance`` must be saved); the
    caller saves the rest. A field that is not ``editable`` is refused with every such name listed.
    """
    refused = sorted(set(data) - set(editable))
    if refused:
        raise InvalidInput(
            f"These fields of the {instance._meta.verbose_name} cannot be edited: {', '.join(refused)}; "
            f"editable: {', '.join(editable)}.",
            [f"{name}: cannot be edited" for name in refused],
        )
    changes = {}
    for name, new in data.items():
        field = instance._meta.get_field(name)
        if field.many_to_many:
            manager = getattr(instance, name)
            before, after = list(manager.all()), list(new)
            if {item.pk for item in before} != {item.pk for item in after}:
                changes[name] = [audit_value(before), audit_value(after)]
                manager.set(after)
            continue
        old = getattr(instance, name)
        if old != new:
            changes[name] = [audit_value(old), audit_value(new)]
            setattr(instance, name, new)
    return changes
