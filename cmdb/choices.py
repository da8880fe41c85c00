"""Choice sets of the CMDB, with the named groups and badge colours the pages and the API share.

Colours are CSS colour names, so any page (the admin included) can paint a badge with them.
"""

from django.db import models


class EnvironmentTier(models.TextChoices):
    DEVELOPMENT = "development", "Development"
    TEST = "test", "Test"
    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"


ENVIRONMENT_TIER_COLOURS = {
    EnvironmentTier.DEVELOPMENT: "gray",
    EnvironmentTier.TEST: "teal",
    EnvironmentTier.STAGING: "orange",
    EnvironmentTier.PRODUCTION: "red",
}


class Criticality(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


CRITICALITY_COLOURS = {
    Criticality.LOW: "gray",
    Criticality.MEDIUM: "steelblue",
    Criticality.HIGH: "orange",
    Criticality.CRITICAL: "red",
}


class CiType(models.TextChoices):
    APPLICATION = "application", "Application"
    DATABASE = "database", "Database"
    SERVER = "server", "Server"
    CLUSTER = "cluster", "Cluster"
    NETWORK = "network", "Network"
    LOAD_BALANCER = "load_balancer", "Load balancer"
    STORAGE = "storage", "Storage"
    OTHER = "other", "Other"


class CiState(models.TextChoices):
    """The ITIL lifecycle of a configuration item; ``ConfigurationItem`` holds the transitions."""

    PLANNED = "planned", "Planned"
    IN_BUILD = "in_build", "In build"
    LIVE = "live", "Live"
    MAINTENANCE = "maintenance", "Maintenance"
    RETIRED = "retired", "Retired"


# Retired is for ever: a CI record is never deleted, so history keeps pointing at it.
CI_TERMINAL_STATES = frozenset({CiState.RETIRED})

CI_STATE_COLOURS = {
    CiState.PLANNED: "gray",
    CiState.IN_BUILD: "steelblue",
    CiState.LIVE: "green",
    CiState.MAINTENANCE: "orange",
    CiState.RETIRED: "black",
}


class CiTransition(models.TextChoices):
    """The verbs of the CI lifecycle; each value is the name of a transition method on the model."""

    BUILD = "build", "Start build"
    GO_LIVE = "go_live", "Go live"
    START_MAINTENANCE = "start_maintenance", "Start maintenance"
    END_MAINTENANCE = "end_maintenance", "End maintenance"
    RETIRE = "retire", "Retire"


class RelationshipKind(models.TextChoices):
    """Read a relationship as a sentence: "<source> <kind> <target>", e.g. "web-shop depends_on orders-db"."""

    DEPENDS_ON = "depends_on", "depends on"
    RUNS_ON = "runs_on", "runs on"
    PART_OF = "part_of", "is part of"
    CONNECTS_TO = "connects_to", "connects to"


class ImpactDirection(models.TextChoices):
    TARGET_TO_SOURCE = "target_to_source", "target → source"
    SOURCE_TO_TARGET = "source_to_target", "source → target"
    BOTH = "both", "both ways"


# Which way a failure travels along each kind of relationship (the impact analysis follows this):
# - "A depends_on B", "A runs_on B": when B breaks, A is hurt.
# - "node part_of cluster": when a member breaks, the whole it belongs to is degraded (ServiceNow's
#   "member of" reads the same way); a broken cluster is its members breaking, so nothing flows back.
# - "A connects_to B" is a link between peers: losing either end breaks the link for the other.
IMPACT_DIRECTIONS = {
    RelationshipKind.DEPENDS_ON: ImpactDirection.TARGET_TO_SOURCE,
    RelationshipKind.RUNS_ON: ImpactDirection.TARGET_TO_SOURCE,
    RelationshipKind.PART_OF: ImpactDirection.SOURCE_TO_TARGET,
    RelationshipKind.CONNECTS_TO: ImpactDirection.BOTH,
}


class ImportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    JSON = "json", "JSON"
