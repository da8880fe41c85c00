"""Which production deployment caused an incident, when the incident does not say.

An incident that names no deployment is tied to the newest production deployment that succeeded within its
release policy's window (``ReleasePolicy.incident_correlation_hours``, 72 by default; a deployment of no release
package falls back to the site's ``RDM_INCIDENT_CORRELATION_HOURS``) before the incident was opened and that
changed the incident's CI (*by CI*) or a CI upstream of it, whose failure reaches the incident's CI by the CMDB's
impact analysis (*by impact*). A CI match is preferred to an impact match, then the newest deployment. An incident
that names a release is only tied to a deployment of that release. These are reads: ``incident_open`` records
the result and a person may correct it (``incident_correlation_correct``).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Greatest

from cmdb.choices import EnvironmentTier
from cmdb.models import ConfigurationItem
from cmdb.selectors import ci_upstream
from deployments.choices import CorrelationMethod, DeploymentState, StepState
from deployments.models import Deployment, Incident, Step
from releases.models import ReleasePolicy, ReleaseUnit

ONE_HOUR = Value(timedelta(hours=1), output_field=DurationField())


def _hours_before(moment, hours) -> ExpressionWrapper:
    """``moment`` less ``hours`` (an integer expression) hours, computed by the database."""
    return ExpressionWrapper(Value(moment, output_field=DateTimeField()) - hours * ONE_HOUR, DateTimeField())


def deployment_cis(deployment: Deployment) -> QuerySet[ConfigurationItem]:
    """The CIs a deployment changed: the targets it reached, and the CIs its release's units name in its
    environment."""
    return ConfigurationItem.objects.filter(pk__in=changed_cis([deployment])[deployment.pk])


def changed_cis(deployments: list[Deployment]) -> dict[int, set[int]]:
    """``deployment_cis`` of many deployments at once, as ids by deployment id: two queries however many."""
    changed: dict[int, set[int]] = {deployment.pk: set() for deployment in deployments}
    reached = Step.objects.filter(deployment__in=list(changed), state=StepState.SUCCEEDED, target__isnull=False)
    for deployment_id, ci_id in reached.values_list("deployment_id", "target__ci_id").distinct():
        changed[deployment_id].add(ci_id)
    releases: dict[int, list[Deployment]] = {}
    for deployment in deployments:
        if deployment.package_id:
            releases.setdefault(deployment.package.release_id, []).append(deployment)
    named = ReleaseUnit.configuration_items.through.objects.filter(releaseunit__release__in=releases)
    fields = ("releaseunit__release_id", "configurationitem_id", "configurationitem__environment_id")
    for release_id, ci_id, environment_id in named.values_list(*fields).distinct():
        for deployment in releases[release_id]:
            if deployment.environment_id == environment_id:
                changed[deployment.pk].add(ci_id)
    return changed


def correlation_candidates(incident: Incident) -> QuerySet[Deployment]:
    """Production deployments that succeeded within their window before the incident opened, newest first.

    One query: each deployment's window is its release policy's, or the site's for a deployment of no package;
    the widest window of all bounds ``finished_at`` too, so the range is read from an index."""
    site_hours = Value(settings.RDM_INCIDENT_CORRELATION_HOURS)
    widest_policy = ReleasePolicy.objects.order_by("-incident_correlation_hours").values("incident_correlation_hours")
    window_hours = Coalesce("package__release__policy__incident_correlation_hours", site_hours)
    candidates = (
        Deployment.objects.alias(earliest=_hours_before(incident.opened_at, window_hours))
        .filter(
            state=DeploymentState.SUCCEEDED,
            environment__tier=EnvironmentTier.PRODUCTION,
            finished_at__lte=incident.opened_at,
            finished_at__gte=_hours_before(incident.opened_at, Greatest(Subquery(widest_policy[:1]), site_hours)),
        )
        .filter(finished_at__gte=F("earliest"))
    )
    if incident.release_id:
        candidates = candidates.filter(package__release=incident.release_id)
    return candidates.order_by("-finished_at", "-id")


def incident_correlation(incident: Incident) -> tuple[Deployment | None, str]:
    """(deployment, how it was found) for ``incident``, or (None, "") when nothing in the window touches it.

    A fixed number of queries: the candidates, what they changed, and one walk upstream of the incident's CI.
    """
    if incident.deployment_id:
        return incident.deployment, CorrelationMethod.EXPLICIT
    if not incident.ci_id:
        return None, CorrelationMethod.NONE
    candidates = list(correlation_candidates(incident).select_related("package"))
    changed = changed_cis(candidates)
    for deployment in candidates:
        if incident.ci_id in changed[deployment.pk]:
            return deployment, CorrelationMethod.CI
    upstream = ci_upstream(incident.ci) if candidates else {}
    for deployment in candidates:
        if not changed[deployment.pk].isdisjoint(upstream):
            return deployment, CorrelationMethod.IMPACT
    return None, CorrelationMethod.NONE


def correlation_via(incident: Incident) -> ConfigurationItem | None:
    """For a link made by impact: the CI the deployment changed whose failure reaches the incident's CI in the
    fewest hops (what the link is "via"); None for any other link."""
    if incident.correlation != CorrelationMethod.IMPACT or not (incident.deployment_id and incident.ci_id):
        return None
    upstream = ci_upstream(incident.ci)
    reaching = [ci for ci in deployment_cis(incident.deployment) if ci.pk in upstream]
    return min(reaching, key=lambda ci: (upstream[ci.pk], ci.name, ci.pk), default=None)
