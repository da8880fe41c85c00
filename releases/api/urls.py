"""The release governance collections, merged into ``/api/v1/`` by ``rdm_site.api.urls``."""

from rest_framework.routers import SimpleRouter

from releases.api import reviews, views

router = SimpleRouter()
router.register("policies", views.ReleasePolicyViewSet)
router.register("windows", views.ReleaseWindowViewSet)
router.register("freezes", views.FreezePeriodViewSet)
router.register("freeze-overrides", views.FreezeOverrideViewSet)
router.register("releases", views.ReleaseViewSet)
router.register("packages", views.ReleasePackageViewSet)
router.register("test-runs", views.TestRunViewSet)
router.register("changes", views.ChangeRecordViewSet)
router.register("change-templates", views.ChangeTemplateViewSet)
router.register("approvals", views.ApprovalViewSet)
router.register("reviews", reviews.ReviewViewSet)
router.register("knowledge", reviews.KnowledgeArticleViewSet)
