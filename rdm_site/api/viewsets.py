"""What every RDM API viewset shares: idempotent POSTs, ETags (304 on If-None-Match, 412 on a stale If-Match),
and transitions as ``POST …/{id}/<transition>/`` calling the one service, answering the fresh object.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from django.core.serializers.json import DjangoJSONEncoder
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from rdm_site.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from rdm_site.api.idempotency import idempotent
from rdm_site.api.permissions import TransitionPermission
from rdm_site.domain import REASON_MAX_LENGTH


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_code = "precondition_failed"
    default_detail = "The record changed since you read it (If-Match does not match its ETag); read it again."


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, as every error is answered."""

    type = serializers.URLField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField()
    conditions = serializers.ListField(child=serializers.CharField(), required=False)
    errors = serializers.JSONField(required=False)


PROBLEMS = {
    code: OpenApiResponse(ProblemSerializer, description=text)
    for code, text in {
        400: "Bad input: every problem listed.",
        401: "Not signed in, or the token is unknown, revoked or expired.",
        403: "Not allowed: the reason (role, scope, ownership, segregation of duties).",
        404: "No such record.",
        409: "Illegal transition or concurrent modification: the current state is named.",
        412: "If-Match does not match the record's ETag.",
        422: "Unmet conditions, every one listed (or an Idempotency-Key reused with another request).",
        429: "Throttled: retry after the Retry-After header.",
    }.items()
}


def etag_of(data) -> str:
    body = json.dumps(data, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":"))
    return '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'


class RdmViewSetMixin:
    """Idempotency keys on POST, ETags on reads, If-Match on writes."""

    def dispatch(self, request, *args, **kwargs):
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if request.method != "POST" or key is None:
            return super().dispatch(request, *args, **kwargs)
        user = self._authenticated_user(request, *args, **kwargs)
        if user is None:  # answered by the normal path (401)
            return super().dispatch(request, *args, **kwargs)
        try:
            return idempotent(
                request, user, key, lambda: super(RdmViewSetMixin, self).dispatch(request, *args, **kwargs)
            )
        except exceptions.APIException as error:
            self.headers = {}
            self.request = self.initialize_request(request, *args, **kwargs)
            response = self.handle_exception(error)
            return self.finalize_response(self.request, response, *args, **kwargs)

    def _authenticated_user(self, request, *args, **kwargs):
        probe = self.initialize_request(request, *args, **kwargs)
        try:
            user = probe.user
        except exceptions.APIException:
            return None
        return user if user is not None and user.is_authenticated else None

    def representation(self, instance) -> dict:
        return self.get_serializer(instance).data

    def retrieve(self, request, *args, **kwargs):
        data = self.representation(self.get_object())
        etag = etag_of(data)
        if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
        return Response(data, headers={"ETag": etag})

    def check_if_match(self, instance) -> None:
        expected = self.request.headers.get("If-Match")
        if expected and expected.strip() != "*" and expected.strip() != etag_of(self.representation(instance)):
            raise PreconditionFailed()

    def perform_update(self, serializer):
        self.check_if_match(serializer.instance)
        super().perform_update(serializer)


class RdmModelViewSet(RdmViewSetMixin, viewsets.ModelViewSet):
    pass


class RdmReadOnlyViewSet(RdmViewSetMixin, viewsets.ReadOnlyModelViewSet):
    pass


class ReasonInput(serializers.Serializer):
    """The reason or comment given with a transition (optional unless the transition demands one)."""

    reason = serializers.CharField(required=False, allow_blank=True, max_length=REASON_MAX_LENGTH, default="")


class NoInput(serializers.Serializer):
    """This transition takes no input."""


@dataclass(frozen=True)
class Transition:
    """What a transition action calls: ``service(<record>=obj, actor=user, **input)``, the input validated by
    ``input_serializer``. The browser's transition views read it from the viewset, so both take the same input.
    """

    service: Callable
    record: str
    input_serializer: type[serializers.Serializer]

    def takes(self, field: str) -> bool:
        return field in self.input_serializer().fields


def viewset_transition(viewset, name: str) -> Transition | None:
    """The transition ``name`` of an API viewset, if it has one by that name."""
    return getattr(getattr(viewset, name, None), "transition", None)


def transition_action(name: str, service, *, record: str, output, input_serializer=ReasonInput, summary: str = ""):
    """A ``POST …/{id}/<name>/`` action: validate the small input, call ``service(<record>=obj, actor=user,
    **input)``, answer the fresh object as ``output`` (the detail serializer) shows it, with its ETag. The
    service decides who may; the action only needs the caller to be signed in and able to read the record.
    """

    def run(self, request, pk=None):
        instance = self.get_object()
        self.check_if_match(instance)
        given = input_serializer(data=request.data)
        given.is_valid(raise_exception=True)
        service(**{record: instance}, actor=request.user, **given.validated_data)
        fresh = self.get_queryset().get(pk=instance.pk)
        data = self.representation(fresh)
        return Response(data, headers={"ETag": etag_of(data)})

    run.__name__ = name
    run.transition = Transition(service, record, input_serializer)
    run.__doc__ = summary or (service.__doc__ or "").strip().split("\n")[0]
    acting = action(
        detail=True, methods=["post"], permission_classes=[TransitionPermission], url_path=name.replace("_", "-")
    )(run)
    # After ``action``, which replaces the function's ``kwargs`` where extend_schema keeps its documentation.
    return extend_schema(
        summary=run.__doc__,
        request=input_serializer,
        responses={200: output, **{code: PROBLEMS[code] for code in (400, 401, 403, 404, 409, 412, 422, 429)}},
    )(acting)
