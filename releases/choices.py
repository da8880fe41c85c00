"""Choice sets of release governance, with the named groups and badge colours the pages and the API share.

Colours are CSS colour names, so any page (the admin included) can paint a badge with them.
Each ``*Transition`` set names the transition methods of a state machine: its values are method names.
"""

from django.db import models

# --- release policy ------------------------------------------------------------------------------


class ReleaseType(models.TextChoices):
    MAJOR = "major", "Major"
    MINOR = "minor", "Minor"
    PATCH = "patch", "Patch"
    EMERGENCY = "emergency", "Emergency"


RELEASE_TYPE_COLOURS = {
    ReleaseType.MAJOR: "purple",
    ReleaseType.MINOR: "steelblue",
    ReleaseType.PATCH: "teal",
    ReleaseType.EMERGENCY: "red",
}


class GateCode(models.TextChoices):
    """The eight gates of the go/no-go checklist (DESIGN.md "The go/no-go checklist"), in display order."""

    PLAN_APPROVED = "plan_approved", "Release plan approved by stakeholders"
    PACKAGE_VALIDATED = "package_validated", "Release package built and validated"
    TESTS_PASSED = "tests_passed", "Test results pass critical and major"
    ROLLBACK_READY = "rollback_ready", "Rollback plan documented and tested"
    STAKEHOLDERS_NOTIFIED = "stakeholders_notified", "Communication plan: stakeholders notified"
    BACKUPS_VERIFIED = "backups_verified", "Backups taken and verified"
    SACM_READY = "sacm_ready", "SACM update pending post-deploy"
    ELS_SCHEDULED = "els_scheduled", "Early life support scheduled"


ALL_GATES: tuple[str, ...] = tuple(GateCode.values)
# Gates a person or a tool attests with GateEvidence; every other gate is computed from the records.
ATTESTED_GATES = frozenset({GateCode.BACKUPS_VERIFIED})


# --- release -------------------------------------------------------------------------------------


class ReleaseState(models.TextChoices):
    DRAFT = "draft", "Draft"
    PLANNED = "planned", "Planned"
    SUBMITTED = "submitted", "Submitted"
    APPROVED = "approved", "Approved"
    READY = "ready", "Ready"
    DEPLOYING = "deploying", "Deploying"
    DEPLOYED = "deployed", "Deployed"
    EARLY_LIFE_SUPPORT = "early_life_support", "Early life support"
    IN_REVIEW = "in_review", "In review"
    CLOSED = "closed", "Closed"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"
    ROLLED_BACK = "rolled_back", "Rolled back"


# Before the production deployment starts: the plan may still change, and the release may be cancelled.
RELEASE_PRE_DEPLOYMENT_STATES = (
    ReleaseState.DRAFT,
    ReleaseState.PLANNED,
    ReleaseState.SUBMITTED,
    ReleaseState.APPROVED,
    ReleaseState.READY,
    ReleaseState.REJECTED,
)
# Approvals given in these states vouch for the current plan and package.
RELEASE_APPROVED_STATES = (ReleaseState.APPROVED, ReleaseState.READY)
# A new package may be registered only while the release has not gone live (or after it failed, for a fix).
RELEASE_PACKAGE_OPEN_STATES = (*RELEASE_PRE_DEPLOYMENT_STATES, ReleaseState.FAILED, ReleaseState.ROLLED_BACK)
RELEASE_LIVE_STATES = (ReleaseState.DEPLOYING, ReleaseState.DEPLOYED, ReleaseState.EARLY_LIFE_SUPPORT)
RELEASE_TERMINAL_STATES = (ReleaseState.CLOSED, ReleaseState.CANCELLED)

RELEASE_STATE_COLOURS = {
    ReleaseState.DRAFT: "gray",
    ReleaseState.PLANNED: "slategray",
    ReleaseState.SUBMITTED: "steelblue",
    ReleaseState.APPROVED: "teal",
    ReleaseState.READY: "green",
    ReleaseState.DEPLOYING: "orange",
    ReleaseState.DEPLOYED: "darkgreen",
    ReleaseState.EARLY_LIFE_SUPPORT: "darkcyan",
    ReleaseState.IN_REVIEW: "purple",
    ReleaseState.CLOSED: "black",
    ReleaseState.REJECTED: "firebrick",
    ReleaseState.CANCELLED: "dimgray",
    ReleaseState.FAILED: "red",
    ReleaseState.ROLLED_BACK: "darkred",
}


class ReleaseTransition(models.TextChoices):
    """The verbs of the release lifecycle; each value is the name of a transition method on Release."""

    PLAN = "plan", "Plan"
    SUBMIT = "submit", "Submit for approval"
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
    REOPEN_APPROVAL = "reopen_approval", "Re-open approval"
    MARK_READY = "mark_ready", "Mark ready"
    CANCEL = "cancel", "Cancel"
    START_DEPLOYING = "start_deploying", "Start deploying"
    MARK_DEPLOYED = "mark_deployed", "Mark deployed"
    START_ELS = "start_els", "Start early life support"
    START_REVIEW = "start_review", "Exit early life support"
    CLOSE = "close", "Close"
    MARK_FAILED = "mark_failed", "Mark failed"
    MARK_ROLLED_BACK = "mark_rolled_back", "Mark rolled back"
    REPLAN = "replan", "Re-plan"


class UnitKind(models.TextChoices):
    APPLICATION_ARTIFACT = "application_artifact", "Application artifact"
    DATABASE_MIGRATION = "database_migration", "Database schema migration"
    INFRASTRUCTURE_TEMPLATE = "infrastructure_template", "Infrastructure-as-code template"


class BaselineKind(models.TextChoices):
    PRE_RELEASE = "pre_release", "Pre-release"
    POST_RELEASE = "post_release", "Post-release"


class KnowledgeKind(models.TextChoices):
    RUNBOOK = "runbook", "Runbook"
    ROLLBACK_STEPS = "rollback_steps", "Rollback steps"
    LESSON_LEARNED = "lesson_learned", "Lesson learned"


# --- package -------------------------------------------------------------------------------------


class PackageState(models.TextChoices):
    ASSEMBLING = "assembling", "Assembling"
    BUILT = "built", "Built"
    VALIDATED = "validated", "Validated"
    REJECTED = "rejected", "Rejected"
    SUPERSEDED = "superseded", "Superseded"


# A package in these states can still receive artifacts; a validated one is frozen.
PACKAGE_EDITABLE_STATES = (PackageState.ASSEMBLING, PackageState.BUILT)
PACKAGE_TERMINAL_STATES = (PackageState.SUPERSEDED,)

PACKAGE_STATE_COLOURS = {
    PackageState.ASSEMBLING: "gray",
    PackageState.BUILT: "steelblue",
    PackageState.VALIDATED: "green",
    PackageState.REJECTED: "firebrick",
    PackageState.SUPERSEDED: "dimgray",
}


class PackageTransition(models.TextChoices):
    MARK_BUILT = "mark_built", "Mark built"
    VALIDATE = "validate", "Validate"
    REJECT = "reject", "Reject"
    SUPERSEDE = "supersede", "Supersede"


# --- change --------------------------------------------------------------------------------------


class ChangeType(models.TextChoices):
    STANDARD = "standard", "Standard (pre-approved template)"
    NORMAL = "normal", "Normal"
    EMERGENCY = "emergency", "Emergency"


CHANGE_TYPE_COLOURS = {
    ChangeType.STANDARD: "teal",
    ChangeType.NORMAL: "steelblue",
    ChangeType.EMERGENCY: "red",
}


class Risk(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


RISK_COLOURS = {Risk.LOW: "green", Risk.MEDIUM: "orange", Risk.HIGH: "red"}


class ChangeState(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    ASSESSED = "assessed", "Assessed"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    SCHEDULED = "scheduled", "Scheduled"
    IMPLEMENTING = "implementing", "Implementing"
    IMPLEMENTED = "implemented", "Implemented"
    FAILED = "failed", "Failed"
    BACKED_OUT = "backed_out", "Backed out"
    REVIEWED = "reviewed", "Reviewed"
    CLOSED = "closed", "Closed"


# Not yet carried out: these changes claim their schedule, so overlaps among them are conflicts.
CHANGE_OPEN_STATES = (
    ChangeState.DRAFT,
    ChangeState.SUBMITTED,
    ChangeState.ASSESSED,
    ChangeState.APPROVED,
    ChangeState.SCHEDULED,
    ChangeState.IMPLEMENTING,
)
# Before implementation: the change may still be edited (an edit to what was approved re-opens its approval).
CHANGE_EDITABLE_STATES = (
    ChangeState.DRAFT,
    ChangeState.SUBMITTED,
    ChangeState.ASSESSED,
    ChangeState.APPROVED,
    ChangeState.SCHEDULED,
)
# Authorised to be carried out: a production deployment may run under these.
CHANGE_AUTHORISED_STATES = (ChangeState.APPROVED, ChangeState.SCHEDULED, ChangeState.IMPLEMENTING)
CHANGE_OUTCOME_STATES = (ChangeState.IMPLEMENTED, ChangeState.FAILED, ChangeState.BACKED_OUT)
CHANGE_TERMINAL_STATES = (ChangeState.REJECTED, ChangeState.CLOSED)

CHANGE_STATE_COLOURS = {
    ChangeState.DRAFT: "gray",
    ChangeState.SUBMITTED: "steelblue",
    ChangeState.ASSESSED: "slateblue",
    ChangeState.APPROVED: "teal",
    ChangeState.REJECTED: "firebrick",
    ChangeState.SCHEDULED: "darkcyan",
    ChangeState.IMPLEMENTING: "orange",
    ChangeState.IMPLEMENTED: "green",
    ChangeState.FAILED: "red",
    ChangeState.BACKED_OUT: "darkred",
    ChangeState.REVIEWED: "purple",
    ChangeState.CLOSED: "black",
}


class ChangeOutcome(models.TextChoices):
    """How an implementation ended; each value is also the state the change moves to."""

    IMPLEMENTED = ChangeState.IMPLEMENTED.value, "Implemented"
    FAILED = ChangeState.FAILED.value, "Failed"
    BACKED_OUT = ChangeState.BACKED_OUT.value, "Backed out"


class ChangeTransition(models.TextChoices):
    SUBMIT = "submit", "Submit"
    PREAPPROVE = "preapprove", "Approve by template"
    ASSESS = "assess", "Assess"
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
    REOPEN_APPROVAL = "reopen_approval", "Re-open approval"
    SCHEDULE = "schedule", "Schedule"
    START = "start", "Start implementing"
    MARK_IMPLEMENTED = "mark_implemented", "Mark implemented"
    MARK_FAILED = "mark_failed", "Mark failed"
    MARK_BACKED_OUT = "mark_backed_out", "Mark backed out"
    REVIEW = "review", "Review"
    CLOSE = "close", "Close"


# --- approval ------------------------------------------------------------------------------------


class Decision(models.TextChoices):
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


DECISION_COLOURS = {Decision.APPROVED: "green", Decision.REJECTED: "firebrick"}


# --- post-implementation review ------------------------------------------------------------------


class ReviewState(models.TextChoices):
    DUE = "due", "Due"
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    ACCEPTED = "accepted", "Accepted"
    RETURNED = "returned", "Returned"


# The service owner still has to write (or rework) it: these count as overdue after the due date.
REVIEW_OPEN_STATES = (ReviewState.DUE, ReviewState.DRAFT, ReviewState.RETURNED)

REVIEW_STATE_COLOURS = {
    ReviewState.DUE: "orange",
    ReviewState.DRAFT: "steelblue",
    ReviewState.SUBMITTED: "purple",
    ReviewState.ACCEPTED: "green",
    ReviewState.RETURNED: "firebrick",
}


class ReviewTransition(models.TextChoices):
    """The verbs of the review; each value is the name of a transition method on PostImplementationReview."""

    START_DRAFT = "start_draft", "Start the draft"
    SUBMIT = "submit", "Submit"
    ACCEPT = "accept", "Accept"
    RETURN = "return_", "Return for rework"


class ObjectivesMet(models.TextChoices):
    YES = "yes", "Yes"
    PARTLY = "partly", "Partly"
    NO = "no", "No"
