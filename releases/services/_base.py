"""What every release-governance service does the same way: refuse, lock, move state, save."""

from typing import TypeVar

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django_fsm import ConcurrentTransition, TransitionNotAllowed, can_proceed

from releases.exceptions import ConcurrentModification, IllegalTransition, InvalidInput, NotAllowed, UnmetConditions

M = TypeVar("M", bound=models.Model)


def ensure_allowed(*problems: str | None) -> None:
    """Raise NotAllowed naming every reason the actor may not act (permission, ownership, segregation)."""
    found = [problem for problem in problems if problem]
    if found:
        raise NotAllowed(" ".join(found))


def ensure_conditions(summary: str, problems: list[str]) -> None:
    if problems:
        raise UnmetConditions(summary, problems)


def require_text(value: str, what: str) -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidInput(f"Give {what}.")
    return value


def validated(instance: models.Model, what: str = "") -> None:
    """``full_clean``, with Django's ValidationError turned into the domain's InvalidInput (every problem listed)."""
    try:
        instance.full_clean()
    except ValidationError as error:
        messages = [f"{field}: {'; '.join(found)}" for field, found in error.message_dict.items()]
        label = what or instance._meta.verbose_name
        raise InvalidInput(f"The {label} is not valid: {' '.join(messages)}", messages) from None


def locked(instance: M) -> M:
    """The row re-read under a lock: the state the service decides on is the one it will change."""
    return type(instance).objects.select_for_update().get(pk=instance.pk)


def ensure_legal(record: models.Model, transition: str, label: str | None = None) -> None:
    """IllegalTransition when the state machine has no ``transition`` from the record's current state."""
    if not can_proceed(getattr(record, transition), check_conditions=False):
        raise IllegalTransition(record, label or transition, record.state)


def apply_transition(record: models.Model, transition: str, *args, **kwargs) -> tuple[str, str]:
    """Call the transition method (it only moves state); return (from, to)."""
    before = record.state
    try:
        getattr(record, transition)(*args, **kwargs)
    except TransitionNotAllowed:
        raise IllegalTransition(record, transition, before) from None
    return before, record.state


def save(record: models.Model, update_fields: list[str] | None = None) -> None:
    """Save, turning a state changed behind our back into the domain's ConcurrentModification."""
    try:
        record.save(update_fields=update_fields)
    except ConcurrentTransition:
        raise ConcurrentModification(
            f"{record._meta.verbose_name.capitalize()} {record} was changed by someone else meanwhile; reload it."
        ) from None


def now():
    return timezone.now()
