"""The demo users: one per role, all able to sign in to the admin, and loading again repairs them."""

import pytest
from django.contrib.auth.models import User

from rdm_site.demo import DEMO_USERS, demo_users_load

pytestmark = pytest.mark.django_db


def test_loading_again_makes_demo_users_of_an_older_database_staff():
    # given demo users loaded before role members were staff
    demo_users_load()
    usernames = [username for username, _, _ in DEMO_USERS]
    User.objects.filter(username__in=usernames).update(is_staff=False)
    # when the demo is loaded again / then every one of them is staff
    demo_users_load()
    assert set(User.objects.filter(username__in=usernames).values_list("is_staff", flat=True)) == {True}
