"""What every service does the same way: refuse, bound free text, lock, move state, save.

The services of every app build on these, so a refusal reads the same wherever it comes from and every
free-text input has a limit (a reason is a sentence or a paragraph, not a file).
"""

from typing import TypeVar

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django_fsm import ConcurrentTransition, TransitionNotAllowed, can_proceed

from rdm_site.exceptions import ConcurrentModification, IllegalTransition, InvalidInput, NotAllowed, UnmetConditions

M = TypeVar("M", bound=models.Model)

# A reason or comment given with a decision or transition.
REASON_MAX_LENGTH = 2000
# Any other free text (descriptions, release notes, steps of a rollback plan) without a limit of its own.
TEXT_MAX_LENGTH = 20000
# The largest id, count or offset PostgreSQL takes (a bigint): larger input is refused, not sent.
BIGINT_MAX = 2**63 - 1


def ensure_allowed(*problems: str | None) -> None:
    """Raise NotAllowed naming every reason the actor may not act (permission, ownership, segregation)."""
    found = [problem for problem in problems if problem]
    if found:
        raise NotAllowed(" ".join(found))


def ensure_conditions(summary: str, problems: list[str]) -> None:
    if problems:
        raise UnmetConditions(summary, problems)


def bounded_text(value: str | None, what: str, max_length: int = REASON_MAX_LENGTH) -> str:
    """The text stripped, or InvalidInput when it is longer than ``max_length`` characters."""
    value = (value or "").strip()
    if len(value) > max_length:
        raise InvalidInput(f"Shorten {what} to at most {max_length} characters (it has {len(value)}).")
    return value


def require_text(value: str | None, what: str, max_length: int = REASON_MAX_LENGTH) -> str:
    """Like ``bounded_text``, and refused when empty: a mandatory reason."""
    value = bounded_text(value, what, max_length)
    if not value:
        raise InvalidInput(f"Give {what}.")
    return value


def shortened(text: str, max_length: int = REASON_MAX_LENGTH) -> str:
    """Text RDM writes itself (a target's long error message) cut to the limit people's input is held to."""
    return text if len(text) <= max_length else text[: max_length - 1] + "…"


def _text_length_problems(instance: models.Model) -> dict[str, list[str]]:
    """Text fields have no length limit in the database; the services give them one."""
    problems = {}
    for field in instance._meta.concrete_fields:
        if isinstance(field, models.TextField):
            limit = field.max_length or TEXT_MAX_LENGTH
            value = getattr(instance, field.attname) or ""
            if len(value) > limit:
                problems[field.name] = [f"at most {limit} characters (it has {len(value)})"]
    return problems


def validated(instance: models.Model, what: str = "", exclude: list[str] | None = None) -> None:
    """``full_clean`` and the text limits, with every problem listed in the domain's InvalidInput."""
    found = _text_length_problems(instance)
    try:
        instance.full_clean(exclude=exclude)
    except ValidationError as error:
        for field, messages in error.message_dict.items():
            found.setdefault(field, []).extend(messages)
    if found:
        messages = [f"{field}: {'; '.join(problems)}" for field, problems in found.items()]
        label = what or instance._meta.verbose_name
        raise InvalidInput(f"The {label} is not valid: {' '.join(messages)}", messages)


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
