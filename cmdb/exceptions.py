"""The CMDB's refusals: the platform's domain error family (``rdm_site.exceptions``), which maps them once to
HTTP statuses and browser messages, and the import's own."""

from typing import NamedTuple

from rdm_site.exceptions import (  # noqa: F401 - re-exported: the family a caller of the CMDB catches
    ConcurrentModification,
    DomainError,
    IllegalTransition,
    InvalidInput,
    NotAllowed,
)


class ImportProblem(NamedTuple):
    where: str  # "line 4" in a CSV file, "item 3" in a JSON list
    reason: str


class ImportFailed(InvalidInput):
    """A file could not be imported; nothing of it was. Lists every problem found, each with its place."""

    def __init__(self, errors: list[ImportProblem]):
        summary = "Nothing was imported: " + "; ".join(f"{where}: {reason}" for where, reason in errors)
        super().__init__(summary, errors)
