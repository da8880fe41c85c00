"""The rules releases are governed by: policies, release windows and freeze periods. Release Managers write
them; every creation and edit is audited with the values it set (related rows by name), because changing
a rule changes the bar for every release still under way.
"""

from django.contrib.auth.models import User
from django.db import transaction

from rdm_site.changes import record_create, record_update
from rdm_site.domain import ensure_allowed, locked
from releases import permissions as perms
from releases.models import FreezePeriod, ReleasePolicy, ReleaseWindow

POLICY_FIELDS = (
    "name",
    "release_type",
    "description",
    "approvals_required",
    "approver_roles",
    "gates_required",
    "lead_time_days",
    "required_test_suites",
    "els_duration_days",
    "els_min_duration_days",
    "els_exit_criteria",
    "hotfix_window_days",
    "incident_correlation_hours",
    "pir_due_days",
    "active",
)
WINDOW_FIELDS = (
    "name",
    "description",
    "first_date",
    "start_time",
    "rrule",
    "duration",
    "time_zone",
    "services",
    "environments",
    "active",
)
FREEZE_FIELDS = ("name", "start", "end", "reason", "services", "environments")


@transaction.atomic
def policy_create(*, actor: User | None, data: dict) -> ReleasePolicy:
    """Define how a type of release is governed (fields of ``POLICY_FIELDS``; the rest take their defaults)."""
    ensure_allowed(perms.permission_problem(actor, perms.ADD_POLICY, f"create release policy {data.get('name', '')}"))
    return record_create(ReleasePolicy(), actor=actor, data=data, editable=POLICY_FIELDS, entity="releasepolicy")


@transaction.atomic
def policy_update(*, policy: ReleasePolicy, actor: User | None, data: dict) -> ReleasePolicy:
    """Edit a policy; every release still governed by it meets the new bar from its next step on."""
    policy = locked(policy)
    ensure_allowed(perms.permission_problem(actor, perms.CHANGE_POLICY, f"edit release policy {policy}"))
    return record_update(policy, actor=actor, data=data, editable=POLICY_FIELDS, entity="releasepolicy")


@transaction.atomic
def window_create(*, actor: User | None, data: dict) -> ReleaseWindow:
    """Open a recurring release window (fields of ``WINDOW_FIELDS``)."""
    ensure_allowed(perms.permission_problem(actor, perms.ADD_WINDOW, f"create release window {data.get('name', '')}"))
    return record_create(ReleaseWindow(), actor=actor, data=data, editable=WINDOW_FIELDS, entity="releasewindow")


@transaction.atomic
def window_update(*, window: ReleaseWindow, actor: User | None, data: dict) -> ReleaseWindow:
    window = locked(window)
    ensure_allowed(perms.permission_problem(actor, perms.CHANGE_WINDOW, f"edit release window {window}"))
    return record_update(window, actor=actor, data=data, editable=WINDOW_FIELDS, entity="releasewindow")


@transaction.atomic
def freeze_create(*, actor: User | None, data: dict) -> FreezePeriod:
    """Declare a blackout (fields of ``FREEZE_FIELDS``); whoever declares it is recorded as its author."""
    ensure_allowed(perms.permission_problem(actor, perms.ADD_FREEZE, f"create freeze {data.get('name', '')}"))
    return record_create(
        FreezePeriod(created_by=actor), actor=actor, data=data, editable=FREEZE_FIELDS, entity="freezeperiod"
    )


@transaction.atomic
def freeze_update(*, freeze: FreezePeriod, actor: User | None, data: dict) -> FreezePeriod:
    freeze = locked(freeze)
    ensure_allowed(perms.permission_problem(actor, perms.CHANGE_FREEZE, f"edit freeze {freeze}"))
    return record_update(freeze, actor=actor, data=data, editable=FREEZE_FIELDS, entity="freezeperiod")


__all__ = ["freeze_create", "freeze_update", "policy_create", "policy_update", "window_create", "window_update"]
