"""Changes to who holds which power are recorded, with who made them: through the admin, and by RDM itself."""

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from rdm_site.middleware import acting_user
from rdm_site.models import AuditEvent
from rdm_site.roles import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _events(user: User) -> list[tuple[str, str, dict]]:
    found = AuditEvent.objects.filter(object_type="auth.user", object_id=str(user.pk)).order_by("id")
    return list(found.values_list("action", "actor_label", "changes"))


def _user_form(user: User, **overrides) -> dict:
    """The admin's user change form as the page shows it for ``user``, with ``overrides`` typed in."""
    form = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": [group.pk for group in user.groups.all()],
        "user_permissions": [],
        "date_joined_0": user.date_joined.date().isoformat(),
        "date_joined_1": user.date_joined.time().strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
        **overrides,
    }
    return {name: value for name, value in form.items() if value is not False}


def test_the_admin_records_who_changed_a_users_status_and_roles(client, admin_user):
    # given a viewer, and the administrator on her change page
    vera = UserFactory(username="vera", roles=[Role.VIEWER])
    client.force_login(admin_user)
    before = len(_events(vera))
    # when the administrator makes her a superuser, deactivates her and adds the Service Owner role
    roles = Group.objects.filter(name__in=[Role.VIEWER, Role.SERVICE_OWNER])
    response = client.post(
        reverse("admin:auth_user_change", args=[vera.pk]),
        _user_form(vera, is_superuser=True, is_active=False, groups=[group.pk for group in roles]),
    )
    # then the change is saved, and the trail names the administrator, each status change and the roles
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert _events(vera)[before:] == [
        ("user.update", "admin", {"is_active": [True, False], "is_superuser": [False, True]}),
        ("user.roles_update", "admin", {"roles": [["Viewer"], ["Service Owner", "Viewer"]]}),
    ]
    assert AuditEvent.objects.filter(action="user.roles_update").last().request_id != "-"


def test_changes_outside_a_request_are_recorded_as_rdm_itself(admin_user):
    # given a user without a role
    bob = UserFactory(username="bob")
    # when a role is given to him from the group's side, outside any request
    Group.objects.get(name=Role.DEPLOYMENT_MANAGER).user_set.add(bob)
    # then RDM itself is named, and he is made staff so that the admin lets him in
    bob.refresh_from_db()
    assert bob.is_staff
    assert _events(bob) == [
        ("user.roles_update", "system", {"roles": [[], ["Deployment Manager"]]}),
        ("user.update", "system", {"is_staff": [False, True]}),
    ]
    # and saves that change no status add nothing
    bob.first_name = "Bob"
    bob.save()
    bob.save(update_fields=["last_login"])
    assert len(_events(bob)) == 2


def test_the_acting_user_is_forgotten_when_the_request_ends(client, admin_user):
    client.force_login(admin_user)
    assert client.get(reverse("admin:index")).status_code == 200
    assert acting_user() is None
