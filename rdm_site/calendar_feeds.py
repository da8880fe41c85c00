"""Calendar feeds: a user's secret address for their calendar application, made (or remade) and revoked by them.

The address carries a random secret; only its digest is stored, so the row is found by hashing what a
request presents (an index lookup, no comparison of secrets in Python). Making a feed while one is active
rotates it: the old address stops working at once.
"""

import secrets

from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from rdm_site.crypto import secret_digest
from rdm_site.exceptions import NotAllowed
from rdm_site.models import CalendarFeed
from rdm_site.selectors import calendar_feed_of
from rdm_site.transitions import transition_record

ACTIVE, REVOKED = "active", "revoked"


@transaction.atomic
def calendar_feed_create(*, actor: User) -> tuple[CalendarFeed, str]:
    """Make the actor's feed, revoking the one they had (a rotation). Returns the feed and its secret, which is
    never shown again. Only a signed-in person makes one: an API token may not mint a credential that would
    outlive its own revocation.
    """
    if getattr(actor, "token", None) is not None:
        raise NotAllowed("An API token cannot make calendar feeds; sign in to make one.")
    User.objects.select_for_update().get(pk=actor.pk)  # one rotation at a time per user
    previous = calendar_feed_of(actor)
    if previous is not None:
        _revoke(actor, previous, reason="Replaced by a new address.")
    secret = secrets.token_urlsafe(32)
    feed = CalendarFeed.objects.create(owner=actor, secret_hash=secret_digest(secret))
    transition_record(
        actor=actor,
        target=feed,
        action="calendar_feed.rotate" if previous else "calendar_feed.create",
        to_state=ACTIVE,
        changes={"replaces": previous.pk} if previous else None,
    )
    return feed, secret


@transaction.atomic
def calendar_feed_revoke(*, actor: User, feed: CalendarFeed) -> CalendarFeed:
    """Revoke one's own feed for good: its address answers 404 from now on."""
    if feed.owner_id != actor.pk:
        raise NotAllowed(f"{actor.get_username()} may not revoke the calendar feed of another user.")
    feed = CalendarFeed.objects.select_for_update().get(pk=feed.pk)
    if feed.revoked_at is None:
        _revoke(actor, feed, reason="")
    return feed


def _revoke(actor: User, feed: CalendarFeed, reason: str) -> None:
    feed.revoked_at = timezone.now()
    feed.save(update_fields=["revoked_at"])
    transition_record(
        actor=actor, target=feed, action="calendar_feed.revoke", from_state=ACTIVE, to_state=REVOKED, reason=reason
    )


def calendar_feed_address(request: HttpRequest, secret: str) -> str:
    """The feed's absolute address on the host the request came to, for a calendar application to subscribe to."""
    return request.build_absolute_uri(reverse("calendar_feed", args=[secret]))


def calendar_feed_authenticate(secret: str) -> CalendarFeed | None:
    """The active feed a presented secret opens (its owner still active), noting when it was read; else None."""
    feed = (
        CalendarFeed.objects.select_related("owner")
        .filter(secret_hash=secret_digest(secret), revoked_at=None, owner__is_active=True)
        .first()
    )
    if feed is not None:
        feed.last_fetched_at = timezone.now()
        CalendarFeed.objects.filter(pk=feed.pk).update(last_fetched_at=feed.last_fetched_at)
    return feed
