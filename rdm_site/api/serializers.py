from django.contrib.auth.models import User
from rest_framework import serializers

from rdm_site.roles import Role


class UserSerializer(serializers.ModelSerializer):
    full_name = serializers.CharField(source="get_full_name", read_only=True)
    roles = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "full_name", "email", "roles", "is_active"]

    def get_roles(self, user) -> list[str]:
        return sorted(group.name for group in user.groups.all() if group.name in Role.values)
