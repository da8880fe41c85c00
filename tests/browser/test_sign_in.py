"""Signing in and out through the form, with the production password hasher."""

import pytest
from playwright.sync_api import expect

from rdm_site.demo import DEMO_PASSWORD
from tests.browser.conftest import sign_in


@pytest.mark.real_password_hasher
def test_a_user_signs_in_sees_their_roles_and_signs_out(page):
    page.goto("/releases/")
    expect(page).to_have_url("/accounts/login/?next=/releases/")

    page.get_by_label("Username").fill("rita.release")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", name="Releases", level=1)).to_be_visible()
    account = page.get_by_role("link", name="Your account")
    expect(account).to_contain_text("Rita Release")
    expect(account).to_contain_text("Release Manager")
    account.click()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_a_wrong_password_is_refused_with_a_message(page):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("rita.release")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("did not match")


def test_a_session_cookie_signs_a_tab_in(page):
    sign_in(page, "vera.viewer")
    page.goto("/")
    expect(page.get_by_role("link", name="Your account")).to_contain_text("Vera Viewer")
