"""The calendar feed in Chromium on the demo data: a Viewer makes it on the tokens page, copies its address, a
calendar application (a client without the session) reads it, and once revoked it answers 404.
"""

from icalendar import Calendar
from playwright.sync_api import Page, expect

from rdm_site.models import CalendarFeed
from tests.browser.conftest import axe_violations, shot, sign_in


def test_a_viewer_makes_reads_and_revokes_the_calendar_feed(page: Page):
    vera = sign_in(page, "vera.viewer")
    page.goto("/tokens/")
    card = page.locator("#calendar-feed")
    expect(card).to_contain_text("You have no calendar feed.")

    card.get_by_role("button", name="Make calendar feed").click()
    address = page.get_by_label("Calendar address")
    expect(address).to_have_value(page.site + "/calendar/" + address.input_value().rpartition("/")[2])
    url = address.input_value()
    assert url.endswith(".ics")
    expect(card.get_by_role("button", name="Copy the calendar address")).to_be_visible()
    expect(card).to_contain_text("Active")
    assert axe_violations(page) == []
    shot(page, "calendar-feed-made")

    calendar_app = page.context.browser.new_context()  # no session: the address is the only credential
    answer = calendar_app.request.get(url)
    assert answer.status == 200
    assert answer.headers["content-type"] == "text/calendar; charset=utf-8"
    summaries = {str(event["SUMMARY"]) for event in Calendar.from_ical(answer.body()).events}
    assert "Release window: Production: Tuesday and Thursday nights" in summaries
    assert any(summary.startswith("Freeze: Year-end freeze") for summary in summaries)

    page.goto("/tokens/")
    expect(page.get_by_label("Calendar address")).to_have_count(0)
    expect(card).not_to_contain_text("never")  # read by the calendar application just now
    page.once("dialog", lambda dialog: dialog.accept())
    card.get_by_role("button", name="Revoke feed").click()
    expect(page.locator("#calendar-feed")).to_contain_text("You have no calendar feed.")
    assert calendar_app.request.get(url).status == 404
    assert not CalendarFeed.objects.filter(owner=vera, revoked_at=None).exists()
    calendar_app.close()
