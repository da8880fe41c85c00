"""The rollout engine's collections, merged into ``/api/v1/`` by ``rdm_site.api.urls``."""

from rest_framework.routers import SimpleRouter

from deployments.api import metrics, promotions, views

router = SimpleRouter()
router.register("processes", views.DeploymentProcessViewSet)
router.register("step-templates", views.StepTemplateViewSet)
router.register("variables", views.VariableViewSet)
router.register("targets", views.TargetViewSet)
router.register("deployments", views.DeploymentViewSet)
router.register("steps", views.StepViewSet)
router.register("step-logs", views.StepLogViewSet)
router.register("incidents", views.IncidentViewSet)
router.register("els", views.ElsViewSet, basename="els")
router.register("metrics/dora", metrics.DoraMetricsViewSet, basename="dora-metrics")
router.register("promotions", promotions.PromotionViewSet)
