"""Field edits as every update service applies and audits them: ``{field: [old, new]}``."""

from typing import Any

from django.db.models import Model

from rdm_site.domain import validated
from rdm_site.exceptions import InvalidInput
from rdm_site.transitions import transition_record


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


def record_create(instance: Model, *, actor, data: dict[str, Any], editable: tuple[str, ...], entity: str) -> Model:
    """Save a new row with ``data`` (many-to-many fields set once it exists) and record every value it was given
    as ``{field: [None, value]}`` (``<entity>.create``). Call inside the service's transaction, after its checks.
    """
    many = {name for name in data if name in editable and instance._meta.get_field(name).many_to_many}
    apply_changes(instance, {name: value for name, value in data.items() if name not in many}, editable)
    validated(instance)
    instance.save()
    apply_changes(instance, {name: data[name] for name in many}, editable)
    changes = {name: [None, audit_value(list(value) if name in many else value)] for name, value in data.items()}
    transition_record(actor=actor, action=f"{entity}.create", target=instance, changes=changes)
    return instance


def record_update(instance: Model, *, actor, data: dict[str, Any], editable: tuple[str, ...], entity: str) -> Model:
    """Apply ``data`` to the locked ``instance`` and, when something changed, save it and record old and new
    values (``<entity>.update``). Call inside the service's transaction, after its checks.
    """
    changes = apply_changes(instance, data, editable)
    if changes:
        validated(instance)
        instance.save()
        transition_record(actor=actor, action=f"{entity}.update", target=instance, changes=changes)
    return instance
