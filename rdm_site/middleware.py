"""Request ids: one per request, taken from ``X-Request-ID`` or made up, carried into every log line."""

import logging
import re
import uuid
from contextvars import ContextVar

current_request_id: ContextVar[str] = ContextVar("current_request_id", default="-")
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
