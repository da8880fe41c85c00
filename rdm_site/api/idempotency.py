"""``Idempotency-Key`` on POST: a retry with the same key and body returns the first answer (status and body)
without a second effect; the same key with another body is refused (422). Two requests with one key at the
same moment are serialised by a PostgreSQL advisory lock on the key: the second waits for the first and
gets its answer. Answers are kept ``RDM_IDEMPOTENCY_HOURS`` (at least 24).
"""

import hashlib
import re
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpResponse
from django.utils import timezone
from rest_framework import exceptions

from rdm_site.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_ACCEPTABLE_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


class IdempotencyKeyReused(exceptions.APIException):
    status_code = 422
    default_code = "idempotency_key_reused"
    default_detail = (
        "This Idempotency-Key was used with a different request (method, path or body). "
        "Use a new key for a new request."
    )


class IdempotencyKeyInvalid(exceptions.ValidationError):
    default_code = "invalid_idempotency_key"


def owner_key(user) -> str:
    token = getattr(user, "token", None)
    return f"token:{token.pk}" if token is not None else f"user:{user.pk}"


def request_hash(request) -> str:
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.get_full_path().encode(), request.body):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def _lock_id(owner: str, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"idempotency:{owner}:{key}".encode()).digest()[:8], "big", signed=True)


def idempotent(request, user, key: str, respond) -> HttpResponse:
    """Answer ``request`` once per (user, key): ``respond()`` runs only when no answer is kept yet."""
    if not _ACCEPTABLE_KEY.match(key):
        raise IdempotencyKeyInvalid({HEADER: ["1 to 255 printable ASCII characters, without spaces."]})
    owner, fingerprint = owner_key(user), request_hash(request)
    lock_id = _lock_id(owner, key)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [lock_id])
    try:
        kept = IdempotencyRecord.objects.filter(owner_key=owner, key=key, created_at__gte=_oldest_kept()).first()
        if kept is not None:
            if kept.request_hash != fingerprint:
                raise IdempotencyKeyReused()
            response = HttpResponse(bytes(kept.response_body), status=kept.status_code, content_type=kept.content_type)
            response[REPLAYED_HEADER] = "true"
            return response
        response = respond()
        if hasattr(response, "render"):
            response.render()
        if response.status_code < 500:
            with transaction.atomic():
                IdempotencyRecord.objects.filter(owner_key=owner, key=key).delete()  # an expired one
                IdempotencyRecord.objects.create(
                    owner_key=owner,
                    key=key,
                    request_hash=fingerprint,
                    status_code=response.status_code,
                    content_type=response.get("Content-Type", "application/json"),
                    response_body=response.content,
                )
        return response
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [lock_id])


def _oldest_kept():
    return timezone.now() - timedelta(hours=settings.RDM_IDEMPOTENCY_HOURS)


def idempotency_records_purge() -> int:
    """Forget answers older than the retention (Celery beat)."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=_oldest_kept()).delete()
    return deleted
