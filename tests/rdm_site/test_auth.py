"""Sign-in and sign-out for every demo role, and permission refusals."""

import http.cookiejar
import re
import urllib.parse
import urllib.request

import pytest

from rdm_site.demo import DEMO_ADMIN, DEMO_PASSWORD, DEMO_USERS
from tests.factories import UserFactory

DEMO_USERNAMES = [username for username, _, _ in DEMO_USERS] + [DEMO_ADMIN]


@pytest.mark.django_db
@pytest.mark.parametrize("username", DEMO_USERNAMES)
def test_every_demo_login_signs_in_and_reaches_the_dashboard(client, demo_users, username):
    response = client.post("/accounts/login/", {"username": username, "password": DEMO_PASSWORD}, follow=True)
    assert response.status_code == 200
    assert response.wsgi_request.user.username == username
    assert b"Sign out" in response.content


@pytest.mark.django_db
def test_wrong_password_is_refused_with_a_clear_message(client, demo_users):
    response = client.post("/accounts/login/", {"username": "vera.viewer", "password": "nope"})
    assert response.status_code == 200
    assert b"did not match" in response.content
    assert not response.wsgi_request.user.is_authenticated


@pytest.mark.django_db
def test_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get("/team/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/team/")


@pytest.mark.django_db
def test_view_refused_to_a_user_without_the_permission(client):
    # given a signed-in user who holds no role
    client.force_login(UserFactory(username="no.role"))
    # then the pages that need a role's read permission are refused
    assert client.get("/").status_code == 403
    assert client.get("/team/").status_code == 403


@pytest.mark.django_db
def test_viewer_sees_the_team_page_and_reads_the_administration_without_changing_anything(client, demo_users):
    client.force_login(demo_users["vera.viewer"])
    team = client.get("/team/")
    assert team.status_code == 200
    assert b"Sophie Owner, Oscar Owner" in team.content or b"Oscar Owner, Sophie Owner" in team.content
    admin = client.get("/admin/")
    assert admin.status_code == 200
    assert not any(model["add_url"] for app in admin.context["app_list"] for model in app["models"])


@pytest.mark.django_db
@pytest.mark.parametrize("username", [username for username, _, _ in DEMO_USERS])
def test_every_demo_role_signs_in_to_the_administration_and_sees_the_apps_it_reads(client, demo_users, username):
    # when a demo user of any role signs in on the admin's own page
    response = client.post("/admin/login/?next=/admin/", {"username": username, "password": DEMO_PASSWORD}, follow=True)
    # then the admin answers (not "not authorized") and lists every app the roles read
    assert response.status_code == 200
    assert response.wsgi_request.path == "/admin/"
    assert {"cmdb", "releases", "deployments", "rdm_site", "auth"} <= {
        app["app_label"] for app in response.context["app_list"]
    }


@pytest.mark.django_db
def test_sign_out_needs_a_post(client, demo_users):
    client.force_login(demo_users["vera.viewer"])
    assert client.get("/accounts/logout/").status_code == 405
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302


@pytest.mark.real_password_hasher
@pytest.mark.django_db(transaction=True)
def test_sign_in_through_the_production_web_server_with_csrf(web_server):
    from rdm_site.demo import demo_users_load

    demo_users_load()
    cookies = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies))
    page = opener.open(web_server + "/accounts/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode(
        {"username": "rita.release", "password": DEMO_PASSWORD, "csrfmiddlewaretoken": token}
    ).encode()
    request = urllib.request.Request(web_server + "/accounts/login/", data=form, headers={"Referer": web_server})
    with opener.open(request) as response:
        dashboard = response.read().decode()
    assert response.url == web_server + "/"
    assert "Rita Release" in dashboard
    assert "Release Manager" in dashboard


@pytest.mark.django_db
def test_tests_hash_passwords_with_the_fast_hasher_unless_they_ask_for_the_real_one():
    assert UserFactory().password.startswith("md5$")


@pytest.mark.real_password_hasher
@pytest.mark.django_db
def test_a_test_marked_for_the_real_hasher_hashes_as_production_does():
    assert UserFactory().password.startswith("pbkdf2_sha256$")
