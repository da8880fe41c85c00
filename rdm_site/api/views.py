from django.contrib.auth.models import User
from rest_framework import viewsets

from rdm_site.api.serializers import UserSerializer


class UserViewSet(viewsets.ReadOnlyModelViewSet):
    """Who uses RDM and which roles they hold (read-only: the administrator manages users)."""

    queryset = User.objects.prefetch_related("groups").order_by("username")
    serializer_class = UserSerializer
    filterset_fields = ["is_active", "groups__name"]
    ordering_fields = ["username", "date_joined"]
