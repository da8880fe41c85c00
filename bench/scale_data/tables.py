"""The shape of the generated year: sizes of its parts, state mixes and lifecycle timings."""

from __future__ import annotations

from datetime import timedelta

from cmdb.choices import CiType, EnvironmentTier, RelationshipKind
from deployments.choices import (
    DeploymentState,
    IncidentSeverity,
)
from rdm_site.roles import Role
from releases.choices import ChangeState, ReleaseState

YEAR = timedelta(days=365)
STACK_SIZE = 50  # CIs of one service in one environment, linked among themselves
RECENT = timedelta(days=40)  # releases younger than this may still be open
GENERATED_PREFIX = "scale"  # usernames of generated users: scale.<role>.<n>

# fmt: off
ENVIRONMENTS = [  # name, tier
    ("dev", EnvironmentTier.DEVELOPMENT), ("test", EnvironmentTier.TEST), ("qa", EnvironmentTier.TEST),
    ("staging", EnvironmentTier.STAGING), ("preprod", EnvironmentTier.STAGING),
    ("production", EnvironmentTier.PRODUCTION),
]
DOMAINS = ["Payments", "Orders", "Catalog", "Checkout", "Identity", "Search", "Billing", "Shipping", "Inventory",
           "Pricing", "Loyalty", "Reviews", "Messaging", "Reporting", "Ledger", "Fraud", "Support", "Content",
           "Partners", "Mobile"]
FUNCTIONS = ["API", "Web", "Worker", "Gateway", "Portal", "Engine", "Feed", "Sync", "Store", "Hub"]
CI_LAYOUT = [CiType.CLUSTER, CiType.NETWORK, CiType.LOAD_BALANCER, CiType.STORAGE, CiType.DATABASE, CiType.DATABASE]
RELATIONSHIP_KINDS = [RelationshipKind.DEPENDS_ON] * 5 + [RelationshipKind.RUNS_ON] * 3 + [
    RelationshipKind.PART_OF, RelationshipKind.CONNECTS_TO]
STEP_NAMES = ["Fetch artifact", "Drain node", "Stop service", "Install package", "Migrate schema", "Start service",
              "Smoke test", "Enable traffic", "Health check", "Notify"]

# Release states by age: old releases have run their course, recent ones are anywhere in it.
OLD_RELEASE_STATES = {
    ReleaseState.CLOSED: 86, ReleaseState.CANCELLED: 5, ReleaseState.FAILED: 3, ReleaseState.ROLLED_BACK: 3,
    ReleaseState.REJECTED: 2, ReleaseState.IN_REVIEW: 1,
}
RECENT_RELEASE_STATES = {
    ReleaseState.DRAFT: 10, ReleaseState.PLANNED: 12, ReleaseState.SUBMITTED: 12, ReleaseState.APPROVED: 8,
    ReleaseState.READY: 8, ReleaseState.DEPLOYING: 2, ReleaseState.DEPLOYED: 6, ReleaseState.EARLY_LIFE_SUPPORT: 12,
    ReleaseState.IN_REVIEW: 8, ReleaseState.CLOSED: 14, ReleaseState.CANCELLED: 4, ReleaseState.REJECTED: 2,
    ReleaseState.FAILED: 1, ReleaseState.ROLLED_BACK: 1,
}
# How far along the path submitted → approved → ready → deploying → deployed → ELS → review → ended each got.
RELEASE_STAGE_FIELDS = ["submitted_at", "approved_at", "ready_at", "deployment_started_at", "deployed_at",
                        "els_started_at", "review_started_at", "ended_at"]
RELEASE_STAGES = {
    ReleaseState.DRAFT: 0, ReleaseState.PLANNED: 0, ReleaseState.SUBMITTED: 1, ReleaseState.REJECTED: 1,
    ReleaseState.APPROVED: 2, ReleaseState.READY: 3, ReleaseState.DEPLOYING: 4, ReleaseState.DEPLOYED: 5,
    ReleaseState.EARLY_LIFE_SUPPORT: 6, ReleaseState.IN_REVIEW: 7, ReleaseState.CLOSED: 8,
}
RELEASE_STAGE_HOURS = [(24, 120), (12, 72), (24, 72), (24, 120), (1, 6), (1, 2), (168, 336), (48, 240)]
# The production deployment and change that follow a release which reached them.
DEPLOYMENT_OF_RELEASE = {
    ReleaseState.DEPLOYING: DeploymentState.RUNNING, ReleaseState.DEPLOYED: DeploymentState.SUCCEEDED,
    ReleaseState.EARLY_LIFE_SUPPORT: DeploymentState.SUCCEEDED, ReleaseState.IN_REVIEW: DeploymentState.SUCCEEDED,
    ReleaseState.CLOSED: DeploymentState.SUCCEEDED, ReleaseState.FAILED: DeploymentState.FAILED,
    ReleaseState.ROLLED_BACK: DeploymentState.ROLLED_BACK,
}
CHANGE_OF_RELEASE = {
    ReleaseState.APPROVED: ChangeState.APPROVED, ReleaseState.READY: ChangeState.SCHEDULED,
    ReleaseState.DEPLOYING: ChangeState.IMPLEMENTING, ReleaseState.DEPLOYED: ChangeState.IMPLEMENTED,
    ReleaseState.EARLY_LIFE_SUPPORT: ChangeState.IMPLEMENTED, ReleaseState.IN_REVIEW: ChangeState.IMPLEMENTED,
    ReleaseState.CLOSED: ChangeState.CLOSED, ReleaseState.FAILED: ChangeState.FAILED,
    ReleaseState.ROLLED_BACK: ChangeState.BACKED_OUT,
}
OLD_CHANGE_STATES = {ChangeState.CLOSED: 85, ChangeState.REJECTED: 5, ChangeState.FAILED: 4,
                     ChangeState.BACKED_OUT: 3, ChangeState.REVIEWED: 3}
RECENT_CHANGE_STATES = {
    ChangeState.DRAFT: 10, ChangeState.SUBMITTED: 12, ChangeState.ASSESSED: 8, ChangeState.APPROVED: 10,
    ChangeState.REJECTED: 4, ChangeState.SCHEDULED: 10, ChangeState.IMPLEMENTED: 16, ChangeState.FAILED: 2,
    ChangeState.BACKED_OUT: 2, ChangeState.REVIEWED: 6, ChangeState.CLOSED: 20,
}
# submitted → assessed → decided → started → ended → reviewed → closed
CHANGE_STAGE_FIELDS = ["submitted_at", "assessed_at", "decided_at", "started_at", "ended_at", "reviewed_at",
                       "closed_at"]
CHANGE_STAGES = {
    ChangeState.DRAFT: 0, ChangeState.SUBMITTED: 1, ChangeState.ASSESSED: 2, ChangeState.APPROVED: 3,
    ChangeState.REJECTED: 3, ChangeState.SCHEDULED: 3, ChangeState.IMPLEMENTING: 4, ChangeState.IMPLEMENTED: 5,
    ChangeState.FAILED: 5, ChangeState.BACKED_OUT: 5, ChangeState.REVIEWED: 6, ChangeState.CLOSED: 7,
}
CHANGE_STAGE_HOURS = [(1, 48), (4, 72), (4, 48), (24, 240), (1, 6), (24, 120), (1, 48)]
OTHER_DEPLOYMENT_STATES = {DeploymentState.SUCCEEDED: 88, DeploymentState.FAILED: 6, DeploymentState.ROLLED_BACK: 3,
                           DeploymentState.ABORTED: 3}
INCIDENT_SEVERITIES = {IncidentSeverity.P1: 3, IncidentSeverity.P2: 12, IncidentSeverity.P3: 45,
                       IncidentSeverity.P4: 40}
# What the audit trail tells of each kind of record: (action, from state, to state).
AUDIT_STORIES = {
    "releases.release": [
        ("release.plan", "draft", "planned"), ("release.submit", "planned", "submitted"),
        ("release.approve", "submitted", "approved"), ("release.mark_ready", "approved", "ready"),
        ("release.start_deploying", "ready", "deploying"), ("release.mark_deployed", "deploying", "deployed"),
        ("release.start_els", "deployed", "early_life_support"),
        ("release.start_review", "early_life_support", "in_review"), ("release.close", "in_review", "closed")],
    "releases.changerecord": [
        ("change.submit", "draft", "submitted"), ("change.assess", "submitted", "assessed"),
        ("change.approve", "assessed", "approved"), ("change.schedule", "approved", "scheduled"),
        ("change.start", "scheduled", "implementing"), ("change.mark_implemented", "implementing", "implemented"),
        ("change.close", "implemented", "closed")],
    "deployments.deployment": [
        ("deployment.start", "planned", "queued"), ("deployment.run", "queued", "running"),
        ("deployment.succeed", "running", "succeeded")],
    "deployments.incident": [
        ("incident.acknowledge", "open", "acknowledged"), ("incident.resolve", "acknowledged", "resolved"),
        ("incident.close", "resolved", "closed")],
    "cmdb.configurationitem": [
        ("ci.update", "", ""), ("ci.start_maintenance", "live", "maintenance"),
        ("ci.end_maintenance", "maintenance", "live")],
}
AUDIT_SHARES = {"releases.release": 30, "releases.changerecord": 25, "deployments.deployment": 25,
                "deployments.incident": 10, "cmdb.configurationitem": 10}
# The roles whose members act on each kind of record in the audit trail.
AUDIT_ROLES = {"releases.release": Role.RELEASE_MANAGER, "releases.changerecord": Role.CHANGE_APPROVER,
               "deployments.deployment": Role.DEPLOYMENT_MANAGER, "deployments.incident": Role.SERVICE_OWNER,
               "cmdb.configurationitem": Role.BUILD_ENGINEER}
# fmt: on
