"""The top bar: the notifications dropdown (latest unread, mark all read with htmx) and the search page."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rdm_site.models import Notification
from rdm_site.notifications import notification_send
from rdm_site.roles import Role
from tests.factories import UserFactory
from tests.releases.factories import ChangeFactory, ConfigurationItemFactory, ReleaseFactory


@pytest.fixture
def vera(db):
    return UserFactory(username="vera", roles=[Role.VIEWER])


@pytest.mark.django_db
def test_the_dropdown_lists_the_latest_unread_only(client, vera):
    for n in range(7):
        notification_send(recipients=[vera], kind="test", subject=f"Notice {n}")
    Notification.objects.filter(subject="Notice 6").update(read_at="2026-01-01T00:00Z")
    client.force_login(vera)
    menu = client.get("/notifications/?menu=1")
    assert menu.templates[0].name == "rdm_site/inc/notifications_menu_items.html"
    html = menu.content.decode()
    assert html.count("list-group-item-action") == 5
    assert "Notice 6" not in html


@pytest.mark.django_db
def test_mark_all_read_from_the_dropdown_answers_the_menu_without_a_count(client, vera):
    notification_send(recipients=[vera], kind="test", subject="Notice")
    client.force_login(vera)
    assert 'data-unread="1"' in client.get("/").content.decode()
    menu = client.post("/notifications/", headers={"HX-Request": "true"})
    assert menu.status_code == 200
    assert 'id="notifications-menu"' in menu.content.decode()
    assert "data-unread" not in menu.content.decode()
    assert not Notification.objects.filter(recipient=vera, read_at__isnull=True).exists()


@pytest.mark.django_db
def test_search_groups_results_with_their_state_in_one_query_per_kind(client, vera):
    for n in range(3):
        ReleaseFactory(name=f"Checkout revamp {n}")
    ConfigurationItemFactory(name="checkout-db")
    ChangeFactory(title="Checkout database index")
    client.force_login(vera)
    page = client.get("/search/", {"q": "checkout"})
    groups = {group.label: group for group in page.context["results"]}
    assert len(groups["Releases"].records) == 3
    assert len(groups["Changes"].records) == 1
    assert "rdm-badge" in page.content.decode()
    with CaptureQueriesContext(connection) as few:
        client.get("/search/", {"q": "checkout"})
    for n in range(10):
        ReleaseFactory(name=f"Checkout again {n}")
        ConfigurationItemFactory(name=f"checkout-{n}")
    with CaptureQueriesContext(connection) as many:
        client.get("/search/", {"q": "checkout"})
    assert len(many) == len(few)


def test_a_list_page_reads_the_top_bar_once_though_its_table_renders_with_the_request(client, vera):
    client.force_login(vera)
    notification_send(recipients=[vera], kind="test", subject="Look")

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/releases/")

    unread_counts = [query for query in queries.captured_queries if '"rdm_site_notification"' in query["sql"]]
    assert response.status_code == 200
    assert len(unread_counts) == 1
    assert response.context["unread_notifications"] == 1


@pytest.mark.django_db
def test_the_notifications_page_makes_the_same_queries_for_ten_times_the_notifications(client, vera):
    client.force_login(vera)

    def queries_with(count: int) -> int:
        for n in range(count):
            notification_send(recipients=[vera], kind="test", subject=f"Notice {n}", link="/releases/")
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/notifications/").status_code == 200
        return len(captured)

    assert queries_with(2) == queries_with(18)
