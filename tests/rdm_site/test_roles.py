"""The role → permission table and its sync."""

import pytest
from django.contrib.auth.models import Group, Permission, User

from rdm_site import roles
from rdm_site.models import AuditEvent
from rdm_site.roles import ROLE_PERMISSIONS, Role, roles_sync
from tests.factories import UserFactory


@pytest.mark.django_db
def test_every_role_exists_as_a_group_after_migrate():
    assert set(Group.objects.values_list("name", flat=True)) >= set(Role.values)


@pytest.mark.django_db
def test_every_role_reads_everything_and_holds_exactly_its_table_rows():
    roles_sync()
    view_permissions = Permission.objects.filter(
        content_type__app_label__in=roles.READABLE_APPS, codename__startswith="view_"
    )
    for role in Role:
        granted = set(Group.objects.get(name=role.value).permissions.all())
        assert set(view_permissions) <= granted
        changing = {f"{p.content_type.app_label}.{p.codename}" for p in granted if not p.codename.startswith("view_")}
        assert changing == set(ROLE_PERMISSIONS[role])


@pytest.mark.django_db
def test_sync_is_idempotent_and_repairs_drift():
    viewer = Group.objects.get(name=Role.VIEWER.value)
    viewer.permissions.add(Permission.objects.get(codename="delete_user"))
    roles_sync()
    roles_sync()
    assert not viewer.permissions.filter(codename="delete_user").exists()
    assert Group.objects.filter(name=Role.VIEWER.value).count() == 1


@pytest.mark.django_db
def test_unknown_permission_in_the_table_is_refused(monkeypatch):
    monkeypatch.setitem(ROLE_PERMISSIONS, Role.VIEWER, frozenset({"releases.approve_everything"}))
    with pytest.raises(LookupError, match=r"unknown permission 'releases\.approve_everything'"):
        roles_sync()


@pytest.mark.django_db
def test_sync_makes_every_role_member_staff_and_records_it():
    # given a role member whose staff status was lost (a database from before the rule), and a user without roles
    member = UserFactory(username="member", roles=[Role.VIEWER])
    User.objects.filter(pk=member.pk).update(is_staff=False)
    outsider = UserFactory(username="outsider")
    # when the roles are synced
    roles_sync()
    # then the member is staff again, recorded as done by RDM itself, and the outsider is not
    assert User.objects.get(pk=member.pk).is_staff
    assert not User.objects.get(pk=outsider.pk).is_staff
    event = AuditEvent.objects.filter(action="user.update", object_id=str(member.pk)).last()
    assert (event.actor_kind, event.changes) == ("system", {"is_staff": [False, True]})
