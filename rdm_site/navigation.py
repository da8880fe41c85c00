"""The top navigation: groups of pages, each shown to those holding the permission its page checks."""

from dataclasses import dataclass

from django.urls import reverse


@dataclass(frozen=True)
class MenuItem:
    label: str
    url_name: str
    permission: str


@dataclass(frozen=True)
class MenuGroup:
    label: str
    items: tuple[MenuItem, ...]


MENU = (
    MenuGroup(
        "Releases",
        (
            MenuItem("Releases", "releases:release_list", "releases.view_release"),
            MenuItem("Packages", "releases:package_list", "releases.view_releasepackage"),
            MenuItem("Approvals", "releases:approval_list", "releases.view_approval"),
        ),
    ),
    MenuGroup(
        "Changes",
        (
            MenuItem("Change records", "releases:change_list", "releases.view_changerecord"),
            MenuItem("Approval queue (CAB)", "releases:change_queue", "releases.view_changerecord"),
            MenuItem("Standard change templates", "releases:changetemplate_list", "releases.view_changetemplate"),
        ),
    ),
    MenuGroup(
        "Deployments",
        (
            MenuItem("Deployments", "deployments:deployment_list", "deployments.view_deployment"),
            MenuItem("Promotions", "deployments:promotion_list", "deployments.view_promotion"),
            MenuItem("What runs where", "what_runs_where", "deployments.view_deployment"),
        ),
    ),
    MenuGroup(
        "After go-live",
        (
            MenuItem("Early Life Support", "deployments:els_board", "deployments.view_earlylifesupport"),
            MenuItem("Incidents", "deployments:incident_list", "deployments.view_incident"),
            MenuItem("Post-implementation reviews", "releases:review_list", "releases.view_postimplementationreview"),
            MenuItem("Knowledge", "releases:knowledge_search", "releases.view_knowledgearticle"),
            MenuItem("DORA metrics", "deployments:dora", "deployments.view_deployment"),
        ),
    ),
    MenuGroup(
        "Schedule",
        (
            MenuItem("Release policies", "releases:policy_list", "releases.view_releasepolicy"),
            MenuItem("Release windows", "releases:window_list", "releases.view_releasewindow"),
            MenuItem("Freezes", "releases:freeze_list", "releases.view_freezeperiod"),
            MenuItem("Freeze overrides", "releases:freezeoverride_list", "releases.view_freezeoverride"),
        ),
    ),
    MenuGroup(
        "CMDB",
        (
            MenuItem("Services", "cmdb:service_list", "cmdb.view_service"),
            MenuItem("Configuration items", "cmdb:ci_list", "cmdb.view_configurationitem"),
            MenuItem("Environments", "cmdb:environment_list", "cmdb.view_environment"),
            MenuItem("Baselines", "cmdb:baseline_list", "cmdb.view_baseline"),
        ),
    ),
    MenuGroup(
        "Governance",
        (
            MenuItem("Audit trail", "audit", "rdm_site.view_auditevent"),
            MenuItem("Team and roles", "team", "auth.view_group"),
            MenuItem("API tokens", "tokens", ""),
            MenuItem("API documentation", "api-docs", ""),
        ),
    ),
)


def menu_for(user) -> list[dict]:
    """The groups and links ``user`` may open (an empty permission: anyone signed in)."""
    groups = []
    for group in MENU:
        links = [
            {"label": item.label, "url": reverse(item.url_name)}
            for item in group.items
            if not item.permission or user.has_perm(item.permission)
        ]
        if links:
            groups.append({"label": group.label, "links": links})
    return groups
