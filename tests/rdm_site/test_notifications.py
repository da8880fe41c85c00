"""Notifications: in RDM and by e-mail (after commit, once), the unread list, and what they are about."""

import pytest
from django.core import mail

from rdm_site.models import Notification
from rdm_site.notifications import notification_send, notifications_email
from rdm_site.selectors import audit_events_for, notifications_about
from tests.factories import UserFactory


@pytest.fixture
def stakeholders(db):
    return [UserFactory(username="sam.stake"), UserFactory(username="sue.stake")]


@pytest.mark.django_db
def test_each_recipient_is_notified_once_and_emailed_after_commit(
    stakeholders, demo_users, django_capture_on_commit_callbacks, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    sender = demo_users["rita.release"]
    # when a notice goes to the stakeholders (one of them listed twice)
    with django_capture_on_commit_callbacks() as callbacks:
        sent = notification_send(
            recipients=[*stakeholders, stakeholders[0]],
            kind="release.stakeholders",
            subject="Release 2.4 goes live on Friday",
            body="Expect a short read-only period.",
            target=sender,
            actor=sender,
        )
    # then each is notified once, and the e-mail task is queued only after commit
    assert len(sent) == 2
    assert len(callbacks) == 1
    notifications_email([n.pk for n in sent])
    notifications_email([n.pk for n in sent])  # a second delivery sends nothing
    assert sorted(message.to[0] for message in mail.outbox) == ["sam.stake@rdm.example", "sue.stake@rdm.example"]
    assert notifications_about(sender, kind="release.stakeholders").count() == 2
    assert audit_events_for(sender).get(action="notification.sent").reason.endswith("sam.stake, sue.stake")


@pytest.mark.django_db
def test_inactive_users_are_not_notified(stakeholders):
    stakeholders[1].is_active = False
    stakeholders[1].save()
    sent = notification_send(recipients=stakeholders, kind="test", subject="hello")
    assert [n.recipient.username for n in sent] == ["sam.stake"]


@pytest.mark.django_db
def test_unread_list_shows_only_ones_own_and_marks_them_read(client, stakeholders):
    notification_send(recipients=stakeholders, kind="test", subject="Change CHG-7 awaits your decision")
    client.force_login(stakeholders[0])
    page = client.get("/notifications/")
    assert page.status_code == 200
    assert page.context["unread_notifications"] == 1
    assert len(page.context["notifications"]) == 1

    mine = Notification.objects.get(recipient=stakeholders[0])
    theirs = Notification.objects.get(recipient=stakeholders[1])
    client.post("/notifications/", {"id": theirs.pk})  # somebody else's: nothing happens
    theirs.refresh_from_db()
    assert theirs.read_at is None
    client.post("/notifications/", {"id": mine.pk})
    mine.refresh_from_db()
    assert mine.read_at is not None
    assert client.post("/notifications/", {"id": "x"}).status_code == 400


@pytest.mark.django_db
def test_notifications_need_sign_in(client):
    assert client.get("/notifications/").status_code == 302
