"""Notifications: in RDM (a user's unread list) and by e-mail, sent after the caller's transaction commits."""

from collections.abc import Iterable

from django.contrib.auth.models import User
from django.db import models, transaction
from django.utils import timezone

from rdm_site.audit import audit_record
from rdm_site.models import AuditEvent, Notification


def notification_send(
    *,
    recipients: Iterable[User],
    kind: str,
    subject: str,
    body: str = "",
    target: models.Model | None = None,
    link: str = "",
    actor: User | None = None,
) -> list[Notification]:
    """Notify each distinct active recipient once, audit it, and queue the e-mails for after commit."""
    object_type, object_id = AuditEvent.reference_to(target) if target is not None else ("", "")
    unique = {user.pk: user for user in recipients if user.is_active}
    with transaction.atomic():
        notifications = Notification.objects.bulk_create(
            Notification(
                recipient=user,
                kind=kind,
                subject=subject,
                body=body,
                link=link,
                object_type=object_type,
                object_id=object_id,
                sent_by=actor,
            )
            for user in unique.values()
        )
        if target is not None:
            names = ", ".join(sorted(user.get_username() for user in unique.values()))
            audit_record(actor=actor, action="notification.sent", target=target, reason=f"{subject} → {names}")
        ids = [notification.pk for notification in notifications]
        if ids:
            from rdm_site.tasks import notifications_email_task

            transaction.on_commit(lambda: notifications_email_task.delay(ids))
    return notifications


def notifications_email(notification_ids: list[int]) -> int:
    """E-mail the notifications not yet e-mailed (idempotent: a second delivery sends nothing)."""
    from django.core.mail import send_mail

    sent = 0
    for notification in Notification.objects.filter(pk__in=notification_ids, emailed_at__isnull=True).select_related(
        "recipient"
    ):
        if notification.recipient.email:
            send_mail(notification.subject, notification.body, None, [notification.recipient.email])
            sent += 1
        Notification.objects.filter(pk=notification.pk, emailed_at__isnull=True).update(emailed_at=timezone.now())
    return sent


def notifications_mark_read(*, user: User, ids: Iterable[int] | None = None) -> int:
    """Mark some (or, with ``ids=None``, all) of the user's unread notifications read."""
    unread = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if ids is not None:
        unread = unread.filter(pk__in=list(ids))
    return unread.update(read_at=timezone.now())
