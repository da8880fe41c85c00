"""What the release governance collections share: writes through the services, a summary shape for lists,
and every operation's error responses in the schema.
"""

from drf_spectacular.openapi import AutoSchema
from rest_framework import mixins, viewsets

from rdm_site.api.permissions import TransitionPermission
from rdm_site.api.viewsets import PROBLEMS, RdmViewSetMixin

READ_PROBLEMS = (401, 403, 404, 429)
WRITE_PROBLEMS = (400, 401, 403, 404, 409, 412, 422, 429)


def problems(*codes: int) -> dict:
    return {code: PROBLEMS[code] for code in codes}


SUMMARIES = {
    "list": "List {plural}.",
    "retrieve": "Read one {name}.",
    "create": "Create a {name} (through its service, audited).",
    "update": "Replace the editable fields of a {name} (what it repeats unchanged is ignored).",
    "partial_update": "Edit some fields of a {name} (through its service, audited).",
}


class DocumentedSchema(AutoSchema):
    """Every operation has a summary and lists the problem details it may answer beside its own answer."""

    def get_summary(self):
        declared = super().get_summary()
        template = SUMMARIES.get(getattr(self.view, "action", None))
        if declared or template is None:
            return declared
        meta = self.view.get_queryset().model._meta
        return template.format(name=meta.verbose_name, plural=meta.verbose_name_plural)

    def get_response_serializers(self):
        declared = super().get_response_serializers()
        if isinstance(declared, dict):
            return declared
        if self.method == "GET":
            return {200: declared, **problems(*READ_PROBLEMS)}
        created = self.method == "POST" and getattr(self.view, "action", None) == "create"
        return {201 if created else 200: declared, **problems(*WRITE_PROBLEMS)}


class ServiceWrites(RdmViewSetMixin):
    """Creates and updates call the app's services (``create_record``, ``update_record``), which decide who
    may; the API only needs the caller to read the collection. Lists may show a lighter summary
    (``serializer_classes["list"]`` over ``list_queryset``); the answer is always re-read, fully loaded.
    """

    permission_classes = [TransitionPermission]
    schema = DocumentedSchema()
    list_queryset = None
    serializer_classes: dict = {}

    def get_queryset(self):
        if self.action == "list" and self.list_queryset is not None:
            return self.list_queryset.all()
        return super().get_queryset()

    def get_serializer_class(self):
        return self.serializer_classes.get(self.action, self.serializer_class)

    def create_record(self, data: dict):
        raise NotImplementedError

    def update_record(self, record, data: dict):
        raise NotImplementedError

    def perform_create(self, serializer):
        record = self.create_record(dict(serializer.validated_data))
        serializer.instance = self.get_queryset().get(pk=record.pk)

    def perform_update(self, serializer):
        self.check_if_match(serializer.instance)
        record = self.update_record(serializer.instance, changed_values(serializer.instance, serializer.validated_data))
        serializer.instance = self.get_queryset().get(pk=record.pk)


def changed_values(record, data: dict) -> dict:
    """Only what differs from the record: a PUT repeats what it does not change, and a service refuses edits
    to fields that never change (a release's policy), not their mention.
    """
    changed = {}
    for name, value in data.items():
        field = record._meta.get_field(name)
        if field.many_to_many:
            same = {item.pk for item in getattr(record, name).all()} == {item.pk for item in value}
        else:
            same = getattr(record, name) == value
        if not same:
            changed[name] = value
    return changed


class EditableViewSet(
    ServiceWrites,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """List, read, create and edit (records of governance are never deleted: they are audited history)."""


class AppendOnlyViewSet(
    ServiceWrites, mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet
):
    """List, read and add: what was recorded stays as it was."""


class ReadOnlyViewSet(ServiceWrites, mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Written by the transitions of other records; read here."""
