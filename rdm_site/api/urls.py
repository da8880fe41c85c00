"""``/api/v1/``: one router for every app's collections (each app's ``api/urls.py`` lists its own), and the
OpenAPI schema with its interactive docs under ``/api/`` (served from our own static files, no CDN).
"""

from importlib import import_module

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from rdm_site.api import views

# Apps whose ``<app>.api.urls`` module holds a ``router`` of their collections.
API_APPS = ("cmdb", "releases", "deployments")

router = DefaultRouter()
router.register("users", views.UserViewSet)
router.register("tokens", views.ApiTokenViewSet, basename="apitoken")
router.register("webhooks", views.WebhookViewSet)
router.register("webhook-deliveries", views.WebhookDeliveryViewSet)
router.register("audit-events", views.AuditEventViewSet)
router.register("notifications", views.NotificationViewSet, basename="notification")
for app in API_APPS:
    try:
        module = import_module(f"{app}.api.urls")
    except ModuleNotFoundError as missing:
        if missing.name not in (f"{app}.api", f"{app}.api.urls"):
            raise
        continue
    router.registry.extend(module.router.registry)

urlpatterns = [
    path("calendar-feed/", views.CalendarFeedView.as_view(), name="calendar-feed"),
    path("", include(router.urls)),
]

schema_urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]
