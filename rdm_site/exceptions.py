"""The domain error family every app raises, mapped once to HTTP statuses (API) and messages (browser).

Apps subclass these for their own cases; nothing else decides how a refusal is answered.
"""

from django.core.exceptions import PermissionDenied


class DomainError(Exception):
    """A refusal written for the person who asked. ``status`` is the HTTP answer it maps to."""

    status = 400
    code = "invalid"


class InvalidInput(DomainError):
    """Bad input: the message (and ``errors``, when several) say what to fix."""

    def __init__(self, message: str, errors: list | None = None):
        self.errors = errors or [message]
        super().__init__(message)


class NotAllowed(DomainError, PermissionDenied):
    """The actor may not do this; the message says why (missing role, segregation of duties, ownership).

    Also a ``PermissionDenied``, so plain Django views answer 403 without further mapping.
    """

    status = 403
    code = "not_allowed"


class IllegalTransition(DomainError):
    """The record's state machine does not allow this transition from its current state."""

    status = 409
    code = "illegal_transition"

    def __init__(self, record, transition: str, state: str, detail: str = ""):
        self.record, self.transition, self.state = record, transition, state
        label = record._meta.verbose_name
        super().__init__(
            detail or f"Cannot {transition.replace('_', ' ')} {label} {record}: it is {state.replace('_', ' ')}."
        )


class ConcurrentModification(DomainError):
    """Somebody else changed the record first; reload and try again."""

    status = 409
    code = "concurrent_modification"


class UnmetConditions(DomainError):
    """The transition is legal but conditions are unmet; ``conditions`` lists every one of them."""

    status = 422
    code = "unmet_conditions"

    def __init__(self, summary: str, conditions: list[str]):
        self.conditions = conditions
        super().__init__(f"{summary}: " + "; ".join(conditions))
