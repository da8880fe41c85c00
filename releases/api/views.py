"""Release governance over ``/api/v1/``: policies, windows, freezes and their overrides, releases, packages,
test runs, changes, change templates and approvals. Every write calls the service the admin calls, every
transition is ``POST …/{id}/<transition>/`` answering the fresh record.
"""

from functools import partial

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import parsers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from cmdb.choices import EnvironmentTier
from rdm_site.api.permissions import TransitionPermission
from rdm_site.api.viewsets import NoInput, ReasonInput, transition_action
from releases import selectors, services
from releases.api import serializers as s
from releases.api.base import (
    READ_PROBLEMS,
    WRITE_PROBLEMS,
    AppendOnlyViewSet,
    EditableViewSet,
    ReadOnlyViewSet,
    problems,
)
from releases.choices import ChangeOutcome, ChangeType
from releases.exceptions import InvalidInput
from releases.filtersets import (
    ApprovalFilterSet,
    ChangeRecordFilterSet,
    ChangeTemplateFilterSet,
    FreezeOverrideFilterSet,
    FreezePeriodFilterSet,
    ReleaseFilterSet,
    ReleasePackageFilterSet,
    ReleasePolicyFilterSet,
    ReleaseWindowFilterSet,
    TestRunFilterSet,
)
from releases.junit import MAX_BYTES, json_results_parse, junit_parse

# --- policies, windows, freezes -------------------------------------------------------------------


class ReleasePolicyViewSet(EditableViewSet):
    """How each type of release is governed: approvals, gates per tier, lead times, ELS defaults."""

    queryset = selectors.policies_list()
    serializer_class = s.ReleasePolicySerializer
    filterset_class = ReleasePolicyFilterSet
    ordering_fields = ["name", "release_type"]
    search_fields = ["name", "description"]

    def create_record(self, data):
        return services.policy_create(actor=self.request.user, data=data)

    def update_record(self, policy, data):
        return services.policy_update(policy=policy, actor=self.request.user, data=data)


class ReleaseWindowViewSet(EditableViewSet):
    """Recurring maintenance windows (RFC 5545 rules in their own time zone) production deployments start in."""

    queryset = selectors.windows_list()
    serializer_class = s.ReleaseWindowSerializer
    filterset_class = ReleaseWindowFilterSet
    ordering_fields = ["name", "first_date"]
    search_fields = ["name", "description"]

    def create_record(self, data):
        return services.window_create(actor=self.request.user, data=data)

    def update_record(self, window, data):
        return services.window_update(window=window, actor=self.request.user, data=data)


class FreezePeriodViewSet(EditableViewSet):
    """Blackout periods on services and environments (none named: all of them)."""

    queryset = selectors.freezes_list()
    serializer_class = s.FreezePeriodSerializer
    filterset_class = FreezePeriodFilterSet
    ordering_fields = ["start", "end", "name"]
    search_fields = ["name", "reason"]

    def create_record(self, data):
        return services.freeze_create(actor=self.request.user, data=data)

    def update_record(self, freeze, data):
        return services.freeze_update(freeze=freeze, actor=self.request.user, data=data)


class FreezeOverrideViewSet(ReadOnlyViewSet):
    """Freezes an Emergency Approver let one change deploy through (``POST /changes/{id}/override-freeze/``)."""

    queryset = selectors.freeze_overrides_list()
    serializer_class = s.FreezeOverrideSerializer
    filterset_class = FreezeOverrideFilterSet
    ordering_fields = ["granted_at"]
    search_fields = ["reason", "change__number"]


# --- releases ---------------------------------------------------------------------------------------


def _evidence_verify(*, release, actor, evidence):
    if evidence.release_id != release.pk:
        raise InvalidInput(f"Evidence {evidence.pk} belongs to another release.", ["evidence: not of this release"])
    return services.gate_evidence_verify(evidence=evidence, actor=actor)


def _release_transition(name, service, input_serializer=NoInput, summary=""):
    return transition_action(
        name,
        service,
        record="release",
        output=s.ReleaseDetailSerializer,
        input_serializer=input_serializer,
        summary=summary,
    )


class ReleaseViewSet(EditableViewSet):
    """Release plans and their governed lifecycle, from draft to closed."""

    queryset = selectors.release_details()
    list_queryset = selectors.releases_list()
    serializer_class = s.ReleaseDetailSerializer
    serializer_classes = {"list": s.ReleaseSerializer}
    filterset_class = ReleaseFilterSet
    ordering_fields = ["planned_start", "created", "name", "state"]
    search_fields = ["name", "version", "description"]

    def create_record(self, data):
        return services.release_create(actor=self.request.user, **data)

    def update_record(self, release, data):
        return services.release_update(release=release, actor=self.request.user, data=data)

    plan = _release_transition("plan", services.release_plan)
    submit = _release_transition("submit", services.release_submit)
    approve = _release_transition("approve", services.release_approve, ReasonInput)
    reject = _release_transition("reject", services.release_reject, ReasonInput)
    mark_ready = _release_transition("mark_ready", services.release_mark_ready)
    replan = _release_transition("replan", services.release_replan, ReasonInput)
    cancel = _release_transition("cancel", services.release_cancel, ReasonInput)
    start_deploying = _release_transition("start_deploying", services.release_deploying)
    mark_deployed = _release_transition("mark_deployed", services.release_deployed)
    mark_failed = _release_transition("mark_failed", services.release_failed, ReasonInput)
    mark_rolled_back = _release_transition("mark_rolled_back", services.release_rolled_back, ReasonInput)
    start_els = _release_transition("start_els", services.release_els_start)
    start_review = _release_transition("start_review", services.release_review_start, ReasonInput)
    close = _release_transition("close", services.release_close, ReasonInput)

    # Evidence and parts of the plan, answered with the fresh release like a transition.
    units = _release_transition(
        "units", services.release_unit_add, s.ReleaseUnitSerializer, "Add a unit (with the CIs it changes)."
    )
    rollback_plan = _release_transition(
        "rollback_plan", services.rollback_plan_write, s.RollbackPlanInput, "Write or rewrite the rollback steps."
    )
    rollback_rehearsal = _release_transition(
        "rollback_rehearsal",
        services.rollback_rehearsal_record,
        s.RehearsalInput,
        "Record that the rollback steps were rehearsed, with a note or a link.",
    )
    evidence = extend_schema(
        examples=[
            OpenApiExample(
                "Backups verified by a tool",
                value={"gate": "backups_verified", "link": "https://backups.example/runs/8812", "tool": "backup-bot"},
                request_only=True,
            )
        ]
    )(
        _release_transition(
            "evidence",
            services.gate_evidence_record,
            s.GateEvidenceInput,
            "Post evidence for an attested gate (e.g. backups verified), with a link.",
        )
    )
    verify_evidence = _release_transition(
        "verify_evidence", _evidence_verify, s.EvidenceVerifyInput, "Confirm evidence someone else posted."
    )
    notify_stakeholders = _release_transition(
        "notify_stakeholders",
        services.stakeholders_notify,
        s.StakeholdersNotifyInput,
        "Tell the stakeholders of the release's services (the communication gate).",
    )
    baselines = _release_transition(
        "baselines",
        services.release_baseline_take,
        s.BaselineTakeInput,
        "Snapshot the CIs the release's units change, as its pre- or post-release baseline.",
    )

    @extend_schema(
        summary="The go/no-go checklist for a tier: every gate's status and evidence.",
        parameters=[
            OpenApiParameter(
                "tier", str, enum=EnvironmentTier.values, default=EnvironmentTier.PRODUCTION, required=False
            )
        ],
        responses={200: s.ChecklistSerializer, **problems(400, *READ_PROBLEMS)},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def checklist(self, request, pk=None):
        tier = request.query_params.get("tier", EnvironmentTier.PRODUCTION)
        if tier not in EnvironmentTier.values:
            raise ValidationError({"tier": [f"One of {', '.join(EnvironmentTier.values)}."]})
        return Response(s.checklist_of(self.get_object(), tier))


# --- packages and test runs -------------------------------------------------------------------------


class XmlParser(parsers.BaseParser):
    """A JUnit XML report, kept as bytes for ``junit_parse`` (which refuses it beyond 10 MB)."""

    media_type = "application/xml"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream.read(MAX_BYTES + 1) if stream is not None else b""


class TextXmlParser(XmlParser):
    media_type = "text/xml"


def _package_transition(name, service, input_serializer=NoInput, summary=""):
    return transition_action(
        name,
        service,
        record="package",
        output=s.PackageDetailSerializer,
        input_serializer=input_serializer,
        summary=summary,
    )


PACKAGE_EXAMPLE = OpenApiExample(
    "A pipeline registers its build",
    request_only=True,
    value={
        "release": 42,
        "version": "2.4.0+build.118",
        "units": [{"name": "shop-app", "kind": "application_artifact", "version": "2.4.0", "configuration_items": [7]}],
        "artifacts": [
            {
                "name": "shop-2.4.0.tar.gz",
                "uri": "https://artifacts.example/shop/2.4.0.tar.gz",
                "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            }
        ],
        "commits": [
            {
                "sha": "4f2a9c1",
                "author": "ann",
                "committed_at": "2026-03-02T09:15:00Z",
                "message": "Faster checkout",
            }
        ],
        "work_items": ["SHOP-123"],
    },
)


@extend_schema_view(
    create=extend_schema(
        summary="Register a build with its units, artifacts, commits and work items, all or nothing.",
        examples=[PACKAGE_EXAMPLE],
    )
)
class ReleasePackageViewSet(EditableViewSet):
    """Tested bundles of a release: artifacts with digests, commits, work items, test runs."""

    queryset = selectors.packages_list()
    serializer_class = s.PackageDetailSerializer
    serializer_classes = {
        "list": s.PackageSerializer,
        "create": s.PackageRegisterSerializer,
        "update": s.PackageUpdateSerializer,
        "partial_update": s.PackageUpdateSerializer,
    }
    filterset_class = ReleasePackageFilterSet
    ordering_fields = ["registered_at", "version"]
    search_fields = ["version", "notes"]

    def create_record(self, data):
        return services.package_register_with_units(actor=self.request.user, **data)

    def update_record(self, package, data):
        return services.package_update(package=package, actor=self.request.user, data=data)

    mark_built = _package_transition("mark_built", services.package_mark_built)
    validate = _package_transition("validate", services.package_validate, ReasonInput)
    reject = _package_transition("reject", services.package_reject, ReasonInput)
    artifacts = _package_transition(
        "artifacts", services.package_artifact_add, s.PackageArtifactSerializer, "Add an artifact with its digest."
    )

    @extend_schema(
        summary="Upload test results: JUnit XML (body or multipart file) or JSON; one test run per suite.",
        parameters=[OpenApiParameter("link", str, description="Where the results are (with an XML body).")],
        request={
            "application/json": s.TestResultsInput,
            "application/xml": OpenApiTypes.BINARY,
            "multipart/form-data": s.TestResultsUploadInput,
        },
        responses={201: s.TestRunSerializer(many=True), **problems(*WRITE_PROBLEMS)},
        examples=[
            OpenApiExample(
                "JSON results",
                request_only=True,
                media_type="application/json",
                value={
                    "suites": [{"name": "regression", "passed": 120, "failed": {"major": 0, "minor": 2}}],
                    "link": "https://ci.example/jobs/118",
                },
            )
        ],
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="test-results",
        permission_classes=[TransitionPermission],
        filter_backends=[],
        pagination_class=None,
        parser_classes=[parsers.JSONParser, XmlParser, TextXmlParser, parsers.MultiPartParser],
    )
    def test_results(self, request, pk=None):
        package = self.get_object()
        self.check_if_match(package)
        results, link = self._results(request)
        runs = services.package_test_results_record(package=package, actor=request.user, results=results, link=link)
        return Response(s.TestRunSerializer(runs, many=True).data, status=status.HTTP_201_CREATED)

    def _results(self, request):
        if isinstance(request.data, bytes):
            given = s.ResultsLinkInput(data=request.query_params)
            given.is_valid(raise_exception=True)
            return junit_parse(request.data), given.validated_data["link"]
        if "file" in request.data or "file" in request.FILES:
            given = s.TestResultsUploadInput(data=request.data)
            given.is_valid(raise_exception=True)
            return junit_parse(given.validated_data["file"].read(MAX_BYTES + 1)), given.validated_data["link"]
        given = s.TestResultsInput(data=request.data)
        given.is_valid(raise_exception=True)
        return json_results_parse(given.validated_data), given.validated_data["link"]


class TestRunViewSet(AppendOnlyViewSet):
    """Service Validation and Testing results per suite, by severity; the tests gate reads the latest ones."""

    __test__ = False  # a view set, not a test, though pytest would collect it by its name

    queryset = selectors.test_runs_list()
    serializer_class = s.TestRunSerializer
    filterset_class = TestRunFilterSet
    ordering_fields = ["run_at", "suite"]
    search_fields = ["suite"]

    def create_record(self, data):
        return services.test_run_record(actor=self.request.user, **data)


# --- changes ----------------------------------------------------------------------------------------


def _change_transition(name, service, input_serializer=NoInput, summary=""):
    return transition_action(
        name,
        service,
        record="change",
        output=s.ChangeDetailSerializer,
        input_serializer=input_serializer,
        summary=summary,
    )


def _completion(outcome: ChangeOutcome):
    return _change_transition(
        f"mark_{outcome}",
        partial(services.change_complete, outcome=outcome),
        ReasonInput,
        f"The deployment under this change ended: {outcome.label.lower()}.",
    )


class ChangeRecordViewSet(EditableViewSet):
    """Change records (RFCs): standard from a pre-approved template, normal, emergency."""

    queryset = selectors.changes_list()
    serializer_class = s.ChangeDetailSerializer
    serializer_classes = {"list": s.ChangeSerializer}
    filterset_class = ChangeRecordFilterSet
    ordering_fields = ["planned_start", "planned_end", "number", "created"]
    search_fields = ["number", "title", "description"]

    def create_record(self, data):
        return services.change_create(actor=self.request.user, **data)

    def update_record(self, change, data):
        return services.change_update(change=change, actor=self.request.user, data=data)

    submit = _change_transition("submit", services.change_submit)
    assess = _change_transition("assess", services.change_assess, s.AssessInput)
    approve = _change_transition("approve", services.change_approve, ReasonInput)
    reject = _change_transition("reject", services.change_reject, ReasonInput)
    schedule = _change_transition("schedule", services.change_schedule)
    start = _change_transition("start", services.change_start)
    mark_implemented = _completion(ChangeOutcome.IMPLEMENTED)
    mark_failed = _completion(ChangeOutcome.FAILED)
    mark_backed_out = _completion(ChangeOutcome.BACKED_OUT)
    review = _change_transition("review", services.change_review, s.ReviewInput)
    close = _change_transition("close", services.change_close, ReasonInput)
    override_freeze = _change_transition("override_freeze", services.freeze_override, s.FreezeOverrideInput)

    @extend_schema(
        summary="Other open changes whose schedules overlap this one's on a shared service or CI.",
        responses={200: s.ChangeSerializer(many=True), **problems(*READ_PROBLEMS)},
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def conflicts(self, request, pk=None):
        overlapping = selectors.changes_list().filter(pk__in=selectors.change_conflicts(self.get_object()).values("pk"))
        return Response(s.ChangeSerializer(overlapping, many=True, context=self.get_serializer_context()).data)


class ChangeTemplateViewSet(EditableViewSet):
    """Standard changes the CAB pre-approved once; pipelines raise changes from them."""

    queryset = selectors.change_templates_list()
    serializer_class = s.ChangeTemplateDetailSerializer
    serializer_classes = {"list": s.ChangeTemplateSerializer}
    filterset_class = ChangeTemplateFilterSet
    ordering_fields = ["name"]
    search_fields = ["name", "description"]

    def create_record(self, data):
        return services.change_template_create(actor=self.request.user, **data)

    def update_record(self, template, data):
        return services.change_template_update(template=template, actor=self.request.user, data=data)

    approve = transition_action(
        "approve",
        services.change_template_approve,
        record="template",
        output=s.ChangeTemplateDetailSerializer,
        input_serializer=NoInput,
    )

    @extend_schema(
        summary="Raise a standard change from this template (approved on submit by the template's pre-approval).",
        request=s.StandardChangeInput,
        responses={201: s.ChangeDetailSerializer, **problems(*WRITE_PROBLEMS)},
        examples=[
            OpenApiExample(
                "Continuous delivery",
                request_only=True,
                value={"planned_start": "2026-03-02T10:00:00Z", "planned_end": "2026-03-02T12:00:00Z", "release": 42},
            )
        ],
    )
    @action(detail=True, methods=["post"], url_path="create-change", permission_classes=[TransitionPermission])
    def create_change(self, request, pk=None):
        template = self.get_object()
        given = s.StandardChangeInput(data=request.data)
        given.is_valid(raise_exception=True)
        change = services.change_create(
            actor=request.user, change_type=ChangeType.STANDARD, template=template, **given.validated_data
        )
        fresh = selectors.changes_list().get(pk=change.pk)
        data = s.ChangeDetailSerializer(fresh, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_201_CREATED)


class ApprovalViewSet(ReadOnlyViewSet):
    """Who decided what on which release plan or change, when and why (decisions are transitions there)."""

    queryset = selectors.approvals_list()
    serializer_class = s.ApprovalSerializer
    filterset_class = ApprovalFilterSet
    ordering_fields = ["decided_at"]
    search_fields = ["reason"]
