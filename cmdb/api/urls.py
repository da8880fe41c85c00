from rest_framework.routers import SimpleRouter

from cmdb.api import views

router = SimpleRouter()
router.register("environments", views.EnvironmentViewSet)
router.register("services", views.ServiceViewSet)
router.register("cis", views.ConfigurationItemViewSet)
router.register("relationships", views.RelationshipViewSet)
router.register("baselines", views.BaselineViewSet)
router.register("version-matrix", views.VersionMatrixViewSet, basename="version-matrix")
