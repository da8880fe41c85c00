"""Choice sets of the rollout engine, with the named groups and badge colours pages and the API share.

Colours are CSS colour names, so any page (the admin included) can paint a badge with them.
"""

from django.db import models


class DeploymentModel(models.TextChoices):
    """How targets are grouped into waves. Parallel is blue/green: the new version goes to the parallel set
    of targets while the live set serves, then a cutover switches traffic (``deployments.parallel``). A
    continuous deployment is any of them requested by a pipeline (``Deployment.continuous``)."""

    BIG_BANG = "big_bang", "Big bang"
    PHASED = "phased", "Phased"
    PARALLEL = "parallel", "Parallel (blue/green)"


class DeploymentState(models.TextChoices):
    PLANNED = "planned", "Planned"
    SCHEDULED = "scheduled", "Scheduled"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ROLLING_BACK = "rolling_back", "Rolling back"
    ROLLED_BACK = "rolled_back", "Rolled back"
    ABORTED = "aborted", "Aborted"


# Not yet finished: "aborted from any live state".
DEPLOYMENT_LIVE_STATES = frozenset(
    {
        DeploymentState.PLANNED,
        DeploymentState.SCHEDULED,
        DeploymentState.QUEUED,
        DeploymentState.RUNNING,
        DeploymentState.PAUSED,
        DeploymentState.ROLLING_BACK,
    }
)
# Holding the (service, environment) lock: from start to end.
DEPLOYMENT_ACTIVE_STATES = frozenset(
    {DeploymentState.QUEUED, DeploymentState.RUNNING, DeploymentState.PAUSED, DeploymentState.ROLLING_BACK}
)
# Where the engine runs steps.
DEPLOYMENT_EXECUTING_STATES = frozenset({DeploymentState.RUNNING, DeploymentState.ROLLING_BACK})
DEPLOYMENT_TERMINAL_STATES = frozenset(
    {DeploymentState.SUCCEEDED, DeploymentState.FAILED, DeploymentState.ROLLED_BACK, DeploymentState.ABORTED}
)

DEPLOYMENT_STATE_COLOURS = {
    DeploymentState.PLANNED: "gray",
    DeploymentState.SCHEDULED: "steelblue",
    DeploymentState.QUEUED: "teal",
    DeploymentState.RUNNING: "royalblue",
    DeploymentState.PAUSED: "orange",
    DeploymentState.SUCCEEDED: "green",
    DeploymentState.FAILED: "red",
    DeploymentState.ROLLING_BACK: "darkorange",
    DeploymentState.ROLLED_BACK: "purple",
    DeploymentState.ABORTED: "black",
}


class DeploymentTransition(models.TextChoices):
    """The verbs of the deployment lifecycle; each value names a transition method on the model."""

    SCHEDULE = "schedule", "Schedule"
    START = "start", "Start"
    RUN = "run", "Run"
    PAUSE = "pause", "Pause"
    RESUME = "resume", "Resume"
    SUCCEED = "succeed", "Succeed"
    FAIL = "fail", "Fail"
    ROLL_BACK = "roll_back", "Roll back"
    FINISH_ROLLBACK = "finish_rollback", "Finish rollback"
    ABORT = "abort", "Abort"


class PauseKind(models.TextChoices):
    """Why a deployment is paused, which decides how it continues."""

    NONE = "", "—"
    OPERATOR = "operator", "Paused by an operator"
    FREEZE = "freeze", "Outside a window or in a freeze"
    INTERVENTION = "intervention", "Waiting for a manual intervention"
    DECISION = "decision", "Waiting for a decision (not reversible)"


class WaveState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    VERIFYING = "verifying", "Verifying"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"


WAVE_TERMINAL_STATES = frozenset({WaveState.PASSED, WaveState.FAILED})
WAVE_STATE_COLOURS = {
    WaveState.PENDING: "gray",
    WaveState.RUNNING: "royalblue",
    WaveState.VERIFYING: "teal",
    WaveState.PASSED: "green",
    WaveState.FAILED: "red",
}


class WaveTransition(models.TextChoices):
    START = "start", "Start"
    VERIFY = "verify", "Verify"
    PASS = "pass_", "Pass"
    FAIL = "fail", "Fail"


class StepState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


STEP_OPEN_STATES = frozenset({StepState.PENDING, StepState.RUNNING})
STEP_TERMINAL_STATES = frozenset({StepState.SUCCEEDED, StepState.FAILED, StepState.SKIPPED})
STEP_STATE_COLOURS = {
    StepState.PENDING: "gray",
    StepState.RUNNING: "royalblue",
    StepState.SUCCEEDED: "green",
    StepState.FAILED: "red",
    StepState.SKIPPED: "silver",
}


class StepTransition(models.TextChoices):
    START = "start", "Start"
    SUCCEED = "succeed", "Succeed"
    FAIL = "fail", "Fail"
    SKIP = "skip", "Skip"


class StepKind(models.TextChoices):
    """What a step is for: the deployment's own work, a wave's health gate, or undoing a step."""

    DEPLOY = "deploy", "Deploy"
    GATE = "gate", "Health gate"
    ROLLBACK = "rollback", "Rollback"


class LogLevel(models.TextChoices):
    DEBUG = "debug", "Debug"
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"


class InterventionAnswer(models.TextChoices):
    PROCEED = "proceed", "Proceed"
    ABORT = "abort", "Abort"


class EventType(models.TextChoices):
    """What a live event is about (``DeploymentEvent.type``)."""

    DEPLOYMENT = "deployment", "Deployment"
    WAVE = "wave", "Wave"
    STEP = "step", "Step"


ALL_TARGETS = "all"


class IncidentSeverity(models.TextChoices):
    """P1 is a service down for everyone; P4 a nuisance. ELS exit criteria count open P1 and P2 incidents."""

    P1 = "p1", "P1 — critical"
    P2 = "p2", "P2 — high"
    P3 = "p3", "P3 — moderate"
    P4 = "p4", "P4 — low"


class IncidentState(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


# Not yet resolved: what ELS exit criteria and on-call count.
INCIDENT_OPEN_STATES = frozenset({IncidentState.OPEN, IncidentState.ACKNOWLEDGED})
INCIDENT_TERMINAL_STATES = frozenset({IncidentState.CLOSED})
INCIDENT_STATE_COLOURS = {
    IncidentState.OPEN: "red",
    IncidentState.ACKNOWLEDGED: "orange",
    IncidentState.RESOLVED: "green",
    IncidentState.CLOSED: "gray",
}
INCIDENT_SEVERITY_COLOURS = {
    IncidentSeverity.P1: "darkred",
    IncidentSeverity.P2: "red",
    IncidentSeverity.P3: "orange",
    IncidentSeverity.P4: "steelblue",
}


class CorrelationMethod(models.TextChoices):
    """How an incident came to be tied to the deployment that caused it (``Incident.correlation``)."""

    NONE = "", "Not linked to a deployment"
    EXPLICIT = "explicit", "Explicit reference"
    CI = "ci", "By CI: it touches a CI the deployment changed"
    IMPACT = "impact", "By impact: it touches a CI downstream of one the deployment changed"
    CORRECTED = "corrected", "Corrected by a person"


# The same in a few words, for filters and table cells: "By CI", "By impact", "Explicit reference"…
CORRELATION_SHORT_LABELS = {method: label.split(":")[0] for method, label in CorrelationMethod.choices}


class ElsState(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    ACTIVE = "active", "Active"
    EXTENDED = "extended", "Extended"
    EXITED = "exited", "Exited"


# Under way: the staff are on duty, incidents count against the exit criteria.
ELS_RUNNING_STATES = frozenset({ElsState.ACTIVE, ElsState.EXTENDED})
ELS_TERMINAL_STATES = frozenset({ElsState.EXITED})
ELS_STATE_COLOURS = {
    ElsState.SCHEDULED: "steelblue",
    ElsState.ACTIVE: "orange",
    ElsState.EXTENDED: "darkorange",
    ElsState.EXITED: "green",
}


class ElsTransition(models.TextChoices):
    """The verbs of Early Life Support; each value names a transition method on the model."""

    START = "start", "Start"
    EXTEND = "extend", "Extend"
    WITHDRAW_EXTENSION = "withdraw_extension", "Withdraw the extension"
    EXIT = "exit", "Exit"


class ElsCriterion(models.TextChoices):
    """The exit criteria RDM evaluates: counts from the ELS plan (``max_*``) and its minimum duration."""

    MAX_OPEN_P1_P2 = "max_open_p1_p2", "Open P1/P2 incidents at most"
    MAX_INCIDENTS = "max_incidents", "Incidents during ELS at most"
    MIN_DURATION = "min_duration", "Minimum duration passed"


class DeploymentNotice(models.TextChoices):
    """Kinds of the notifications the deployments app sends (``Notification.kind``)."""

    STARTED = "deployment.started", "Production deployment started"
    SUCCEEDED = "deployment.succeeded", "Production deployment succeeded"
    FAILED = "deployment.failed", "Production deployment failed or aborted"
    ROLLED_BACK = "deployment.rolled_back", "Production deployment rolled back"
    ELS_STARTED = "els.started", "Early life support started"
    ELS_EXIT_OFFERED = "els.exit_offered", "Early life support may exit"
    ELS_EXITED = "els.exited", "Early life support exited"
    ELS_INCIDENT = "els.incident", "P1/P2 incident during early life support"
    PROMOTION_STOPPED = "promotion.stopped", "Continuous promotion stopped"


class PromotionState(models.TextChoices):
    """A continuous promotion: one pipeline run taking a package through the environments in order."""

    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    STOPPED = "stopped", "Stopped"


PROMOTION_STATE_COLOURS = {
    PromotionState.RUNNING: "royalblue",
    PromotionState.SUCCEEDED: "green",
    PromotionState.STOPPED: "red",
}


class PromotionStageState(models.TextChoices):
    """One environment of a promotion: waiting for the stage before it, deploying, done, or where it stopped."""

    PENDING = "pending", "Waiting"
    RUNNING = "running", "Deploying"
    SUCCEEDED = "succeeded", "Succeeded"
    STOPPED = "stopped", "Stopped"


PROMOTION_STAGE_STATE_COLOURS = {
    PromotionStageState.PENDING: "gray",
    PromotionStageState.RUNNING: "royalblue",
    PromotionStageState.SUCCEEDED: "green",
    PromotionStageState.STOPPED: "red",
}
