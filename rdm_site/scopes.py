"""API token scopes: which permissions of its owner a token may use.

``read`` reads everything the owner may read; each write scope names an area and also reads. A permission
of no area (user and role administration, making tokens) is never exercised through a token.
"""

from django.db import models


class Scope(models.TextChoices):
    READ = "read", "read everything the owner may read"
    CMDB = "cmdb", "write the CMDB: CIs, relationships, baselines, imports"
    RELEASES = "releases", "write release plans, policies, windows, freezes, evidence, decisions"
    PACKAGES = "packages", "register packages, units, artifacts and test results; validate them"
    CHANGES = "changes", "create and decide change records, templates and freeze overrides"
    DEPLOYMENTS = "deployments", "configure, plan and run deployments"
    INCIDENTS = "incidents", "open, update and resolve incidents"
    WEBHOOKS = "webhooks", "manage webhook subscriptions"


_PACKAGE_MODELS = ("releasepackage", "packageartifact", "testrun", "releaseunit")
_PACKAGE_CODENAMES = ("register_package", "validate_package")
_CHANGE_MODELS = ("changerecord", "changetemplate", "freezeoverride")
_CHANGE_CODENAMES = (
    "create_standard_change",
    "assess_change",
    "approve_change",
    "approve_emergency_change",
    "implement_change",
    "implement_standard_change",
    "review_change",
    "override_freeze",
)


def permission_scope(permission: str) -> str | None:
    """The scope that lets a token use ``permission`` ("app_label.codename"), or None when none does."""
    app_label, _, codename = permission.partition(".")
    if codename.startswith("view_"):
        return Scope.READ
    model = codename.partition("_")[2]
    if app_label == "cmdb":
        return Scope.CMDB
    if app_label == "releases":
        if model in _PACKAGE_MODELS or codename in _PACKAGE_CODENAMES:
            return Scope.PACKAGES
        if model in _CHANGE_MODELS or codename in _CHANGE_CODENAMES:
            return Scope.CHANGES
        return Scope.RELEASES
    if app_label == "deployments":
        return Scope.INCIDENTS if "incident" in model else Scope.DEPLOYMENTS
    if app_label == "rdm_site" and "webhook" in model:
        return Scope.WEBHOOKS
    return None


def scopes_allow(scopes: list[str], permission: str) -> bool:
    """Whether a token with ``scopes`` may use ``permission`` (its owner must hold it as well)."""
    scope = permission_scope(permission)
    if scope is None:
        return False
    if scope == Scope.READ:
        return bool(scopes)
    return scope in scopes
