"""The yardstick: a minimal DRF ListAPIView over the same table as each product list, 50 rows a page, showing
every column of the row itself (foreign keys as ids; no related names, counts, links or available actions)."""

from django.urls import include, path
from rest_framework import generics, serializers

from deployments.models import Deployment
from releases.models import Release


def _own_columns(model) -> list[str]:
    return [field.name for field in model._meta.concrete_fields]


class ReleaseRowSerializer(serializers.ModelSerializer):
    class Meta:
        model = Release
        fields = _own_columns(Release)


class DeploymentRowSerializer(serializers.ModelSerializer):
    class Meta:
        model = Deployment
        fields = _own_columns(Deployment)


urlpatterns = [
    path(
        "bench/releases/",
        generics.ListAPIView.as_view(queryset=Release.objects.order_by("-id"), serializer_class=ReleaseRowSerializer),
    ),
    path(
        "bench/deployments/",
        generics.ListAPIView.as_view(
            queryset=Deployment.objects.order_by("-id"), serializer_class=DeploymentRowSerializer
        ),
    ),
    path("", include("rdm_site.urls")),
]
