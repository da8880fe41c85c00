"""Refusals particular to release governance; all belong to the platform's domain error family.

The platform maps them once to HTTP (``rdm_site.api.exceptions``) by their declared status.
"""

from rdm_site.exceptions import (  # noqa: F401 - re-exported: the family a caller of releases catches
    ConcurrentModification,
    DomainError,
    IllegalTransition,
    InvalidInput,
    NotAllowed,
    UnmetConditions,
)


class AlreadyDecided(DomainError):
    """The approver has already decided on this record; each approver counts once."""

    status = 409
    code = "already_decided"


class PackageImmutable(DomainError):
    """A validated package is what was tested and approved: its content may not change any more."""

    status = 409
    code = "package_immutable"

    def __init__(self, package, attempt: str = "change"):
        self.package = package
        super().__init__(
            f"Cannot {attempt} package {package}: it is {package.state} and a validated or retired package "
            f"is immutable. Register a new package instead (it supersedes this one)."
        )
