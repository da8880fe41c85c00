"""Which production deployment caused an incident, when the incident does not say.

An incident that names no deployment is tied to the newest production deployment that succeeded within
``RDM_INCIDENT_CORRELATION_HOURS`` (72 by default) before it was opened and that changed the incident's CI
(*by CI*) or a CI upstream of it, whose failure reaches the incident's CI by the CMDB's impact analysis
(*by impact*). A CI match is preferred to an impact match, then the newest deployment. An incident that names
a release is only tied to a deployment of that release. These are reads: ``incident_open`` records the result
and a person may correct it (``incident_correlation_correct``).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q, QuerySet

from cmdb.choices import EnvironmentTier
from cmdb.models import ConfigurationItem
from cmdb.selectors import ci_impact
from deployments.choices import CorrelationMethod, DeploymentState, StepState
from deployments.models import Deployment, Incident


def correlation_window() -> timedelta:
    return timedelta(hours=settings.RDM_INCIDENT_CORRELATION_HOURS)


def deployment_cis(deployment: Deployment) -> QuerySet[ConfigurationItem]:
    """The CIs a deployment changed: the targets it reached, and the CIs its release's units name in its
    environment."""
    changed = Q(deployment_target__steps__deployment=deployment, deployment_target__steps__state=StepState.SUCCEEDED)
    if deployment.package_id:
        changed |= Q(release_units__release__packages=deployment.package_id, environment=deployment.environment_id)
    return ConfigurationItem.objects.filter(changed).distinct()


def correlation_candidates(incident: Incident) -> QuerySet[Deployment]:
    """Production deployments that succeeded within the window before the incident opened, newest first."""
    candidates = Deployment.objects.filter(
        state=DeploymentState.SUCCEEDED,
        environment__tier=EnvironmentTier.PRODUCTION,
        finished_at__lte=incident.opened_at,
        finished_at__gte=incident.opened_at - correlation_window(),
    )
    if incident.release_id:
        candidates = candidates.filter(package__release=incident.release_id)
    return candidates.order_by("-finished_at", "-id")


def incident_correlation(incident: Incident) -> tuple[Deployment | None, str]:
    """(deployment, how it was found) for ``incident``, or (None, "") when nothing in the window touches it."""
    if incident.deployment_id:
        return incident.deployment, CorrelationMethod.EXPLICIT
    if not incident.ci_id:
        return None, CorrelationMethod.NONE
    candidates = list(correlation_candidates(incident))
    changed = {deployment: set(deployment_cis(deployment).values_list("pk", flat=True)) for deployment in candidates}
    for deployment in candidates:
        if incident.ci_id in changed[deployment]:
            return deployment, CorrelationMethod.CI
    downstream: dict[int, set[int]] = {}  # each CI's impact walked once, however many deployments changed it
    for deployment in candidates:
        for ci_id in changed[deployment]:
            if ci_id not in downstream:
                impact = ci_impact(ConfigurationItem(pk=ci_id))
                downstream[ci_id] = {hurt.ci.pk for hurt in impact.cis}
            if incident.ci_id in downstream[ci_id]:
                return deployment, CorrelationMethod.IMPACT
    return None, CorrelationMethod.NONE


def correlation_via(incident: Incident) -> ConfigurationItem | None:
    """For a link made by impact: the CI the deployment changed whose failure reaches the incident's CI in the
    fewest hops (what the link is "via"); None for any other link."""
    if incident.correlation != CorrelationMethod.IMPACT or not (incident.deployment_id and incident.ci_id):
        return None
    reaching = []
    for changed in deployment_cis(incident.deployment).order_by("name", "pk"):
        depths = {hurt.ci.pk: hurt.depth for hurt in ci_impact(changed).cis}
        if incident.ci_id in depths:
            reaching.append((depths[incident.ci_id], changed))
    return min(reaching, key=lambda found: found[0])[1] if reaching else None
