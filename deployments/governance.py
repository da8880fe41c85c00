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
    """The release's units that cannot be rolled back and concern this service (or name no CI at all)."""
    if deployment.package_id is None:
        return []
    units = deployment.package.release.units.filter(reversible=False).prefetch_related("configuration_items")
    return [
        str(unit)
        for unit in units
        if not unit.configuration_items.all()
        or any(ci.service_id == deployment.service_id for ci in unit.configuration_items.all())
    ]
