"""The CMDB's domain errors: one family, mapped once to HTTP and to browser messages."""

from typing import NamedTuple

from django.core.exceptions import PermissionDenied


class CmdbError(Exception):
    """Base of every refusal the CMDB gives; the message is written for the person who asked."""


class NotAllowed(CmdbError, PermissionDenied):
    """The actor may not do this; the message says why (missing role, or not the service's owner).

    It is also a ``PermissionDenied``, so Django and DRF answer 403 without further mapping.
    """


class IllegalTransition(CmdbError):
    """The CI's lifecycle does not allow this transition from its current state."""


class ImportProblem(NamedTuple):
    where: str  # "line 4" in a CSV file, "item 3" in a JSON list
    reason: str


class ImportFailed(CmdbError):
    """A file could not be imported; nothing of it was. Lists every problem found, each with its place."""

    def __init__(self, errors: list[ImportProblem]):
        self.errors = errors
        super().__init__("Nothing was imported: " + "; ".join(f"{where}: {reason}" for where, reason in errors))
