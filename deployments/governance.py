"""What release governance (``releases``) says about a deployment: eligibility, change, windows and freezes.

The engine asks here, never ``releases`` directly, so the rules of the governed lifecycle stay in one place.
"""

from __future__ import annotations

from datetime import datetime

from deployments.models import Deployment


def deployment_conditions(deployment: Deployment, at: datetime) -> list[str]:
    """Unmet conditions to schedule or start ``deployment`` at ``at``."""
    return window_conditions(deployment, at)


def window_conditions(deployment: Deployment, at: datetime) -> list[str]:
    """Unmet window and freeze conditions at ``at``."""
    return []


def irreversible_units(deployment: Deployment) -> list[str]:
    """Names of the package's units that cannot be rolled back."""
    return []
