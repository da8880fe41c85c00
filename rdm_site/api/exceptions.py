"""Every API error in one shape: RFC 9457 problem details (``application/problem+json``)."""

from http import HTTPStatus

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from rdm_site.exceptions import DomainError, InvalidInput, UnmetConditions

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_response(*, status_code: int, code: str, detail: str, headers=None, **extensions) -> Response:
    body = {
        "type": f"https://rdm.example/problems/{code}",
        "title": _title(status_code),
        "status": status_code,
        "detail": detail,
        "code": code,
        **extensions,
    }
    return Response(body, status=status_code, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def _title(status_code: int) -> str:
    return HTTPStatus(status_code).phrase


def problem_exception_handler(exc, context):
    """Map domain errors by their declared status; reshape DRF's own errors the same way."""
    if isinstance(exc, DomainError):
        extensions = {}
        if isinstance(exc, UnmetConditions):
            extensions["conditions"] = exc.conditions
        if isinstance(exc, InvalidInput):
            extensions["errors"] = exc.errors
        return problem_response(status_code=exc.status, code=exc.code, detail=str(exc), **extensions)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        return problem_response(
            status_code=response.status_code, code="invalid", detail="The input is not valid.", errors=response.data
        )
    detail = response.data.get("detail", "") if isinstance(response.data, dict) else str(response.data)
    code = getattr(detail, "code", None) or "error"
    return problem_response(
        status_code=response.status_code, code=code, detail=str(detail), headers=_kept_headers(response)
    )


def _kept_headers(response) -> dict:
    return {name: response[name] for name in ("WWW-Authenticate", "Retry-After", "Allow") if name in response}
