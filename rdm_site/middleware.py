"""Request ids (one per request, taken from ``X-Request-ID`` or made up, carried into every log line) and who
is acting in the request being served (for the records that signals write, rdm_site.signals)."""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:  # the logging configuration imports this module before the apps are ready
    from django.contrib.auth.models import User

current_request_id: ContextVar[str] = ContextVar("current_request_id", default="-")
_current_request: ContextVar[HttpRequest | None] = ContextVar("current_request", default=None)
_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    header = "X-Request-ID"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        offered = request.headers.get(self.header, "")
        request_id = offered if _ACCEPTABLE_REQUEST_ID.match(offered) else uuid.uuid4().hex
        request.request_id = request_id
        # Kept until the request finishes (see request_id_clear): Django logs error responses
        # after the middleware chain has returned, and those lines must carry the id too.
        current_request_id.set(request_id)
        response = self.get_response(request)
        response[self.header] = request_id
        return response


def request_id_clear(**kwargs) -> None:
    """Connected to ``request_finished``: nothing logged between requests claims the last one's id."""
    current_request_id.set("-")


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get()
        return True


class ActingUserMiddleware:
    """Keeps the request being served in a ContextVar, cleared after it, so that ``acting_user`` can name
    who acts. The request rather than its user: an API view authenticates its token after the middleware.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        reset = _current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            _current_request.reset(reset)


def acting_user() -> User | None:
    """The signed-in user (or token actor) of the request being served; None outside a request (RDM itself)."""
    request = _current_request.get()
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None
