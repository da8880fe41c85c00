"""The CMDB's domain errors: members of the platform family (rdm_site.exceptions), which maps them
once to HTTP statuses and browser messages."""

from typing import NamedTuple

from rdm_site import exceptions as platform


class CmdbError(platform.DomainError):
    """Base of every refusal the CMDB gives; the message is written for the person who asked."""


class NotAllowed(CmdbError, platform.NotAllowed):
    """The actor may not do this; the message says why (missing role, or not the service's owner)."""


class IllegalTransition(CmdbError, platform.IllegalTransition):
    """The CI's lifecycle does not allow this transition from its current state."""


class ImportProblem(NamedTuple):
    where: str  # "line 4" in a CSV file, "item 3" in a JSON list
    reason: str


class ImportFailed(CmdbError, platform.InvalidInput):
    """A file could not be imported; nothing of it was. Lists every problem found, each with its place."""

    def __init__(self, errors: list[ImportProblem]):
        summary = "Nothing was imported: " + "; ".join(f"{where}: {reason}" for where, reason in errors)
        super().__init__(summary, errors)
