"""How release governance records look in the API, and the small inputs of its writes and transitions.

Lists show a record's summary; one record shows everything, with ``"actions"``: what the caller may do with
it now, from the rule tables the services enforce. States are read-only: only transitions move them.
"""

from django.contrib.auth.models import User
from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cmdb.models import ConfigurationItem, Service
from rdm_site.domain import REASON_MAX_LENGTH
from rdm_site.representations import representation_register
from releases import permissions as perms
from releases.actions import change_available_actions, package_available_actions, release_available_actions
from releases.checklist import checklist_evaluate
from releases.choices import BaselineKind, GateCode, Risk
from releases.models import (
    Approval,
    ChangeRecord,
    ChangeTemplate,
    FreezeOverride,
    FreezePeriod,
    GateEvidence,
    PackageArtifact,
    Release,
    ReleasePackage,
    ReleasePolicy,
    ReleaseUnit,
    ReleaseWindow,
    RollbackPlan,
    TestRun,
)
from releases.selectors import latest_test_runs, release_active_approvals, release_current_package
from releases.services.policy import FREEZE_FIELDS, POLICY_FIELDS, WINDOW_FIELDS

MAX_ITEMS = 1000  # commits, work items, artifacts or units in one request


def _nul_free(value) -> bool:
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, dict):
        return all(_nul_free(key) and _nul_free(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_nul_free(item) for item in value)
    return True


class StoredJSONField(serializers.JSONField):
    """JSON kept in PostgreSQL, which refuses the NUL character in text: refused here, as bad input."""

    default_error_messages = {"nul": "Null characters are not allowed."}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not _nul_free(value):
            self.fail("nul")
        return value


class LinkField(serializers.URLField):
    """A URL, or empty: a link shown read-only may be empty too, and the schema says so."""

    def __init__(self, **kwargs):
        if kwargs.get("read_only"):
            kwargs.setdefault("allow_blank", True)
        super().__init__(**kwargs)


@extend_schema_field(serializers.ListField(child=serializers.CharField()))
class AvailableActionsField(serializers.Field):
    """What the caller may do with the record now (empty without a caller, e.g. in a webhook's payload)."""

    def __init__(self, available, **kwargs):
        self.available = available
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, record):
        request = self.context.get("request")
        return self.available(record, request.user) if request is not None else []


class RecordSerializer(serializers.ModelSerializer):
    """Shared by every record below: JSON refuses NUL characters, users are named, and writes go through the
    services (the views call them), so ``save()`` on the model is never reached.
    """

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.JSONField: StoredJSONField,
        models.URLField: LinkField,
    }

    def build_relational_field(self, field_name, relation_info):
        """People are named by their username, as pipelines and chat bots know them."""
        field_class, kwargs = super().build_relational_field(field_name, relation_info)
        if relation_info.related_model is User:
            field_class, kwargs["slug_field"] = serializers.SlugRelatedField, "username"
            if "queryset" in kwargs:
                kwargs["queryset"] = User.objects.filter(is_active=True)
        return field_class, kwargs

    def create(self, validated_data):
        raise NotImplementedError("created by a service in the view")

    def update(self, instance, validated_data):
        raise NotImplementedError("updated by a service in the view")


# --- policies, windows, freezes -------------------------------------------------------------------


class ReleasePolicySerializer(RecordSerializer):
    class Meta:
        model = ReleasePolicy
        fields = ["id", *POLICY_FIELDS]
        validators = []  # the service names a duplicate with the rest of the problems


class ReleaseWindowSerializer(RecordSerializer):
    next_opens_at = serializers.SerializerMethodField(help_text="The next occurrence's start, in UTC.")

    class Meta:
        model = ReleaseWindow
        fields = [
            "id",
            *WINDOW_FIELDS,
            "next_opens_at",
        ]
        validators = []

    def get_next_opens_at(self, window) -> str | None:
        try:
            occurrence = window.next_occurrence()
        except (ValueError, OverflowError):
            return None
        return occurrence.start.isoformat() if occurrence else None


class FreezePeriodSerializer(RecordSerializer):
    class Meta:
        model = FreezePeriod
        fields = ["id", *FREEZE_FIELDS, "created_by"]
        read_only_fields = ["created_by"]


class FreezeOverrideSerializer(RecordSerializer):
    change = serializers.SlugRelatedField(slug_field="number", read_only=True)

    class Meta:
        model = FreezeOverride
        fields = [
            "id",
            "change",
            "freeze",
            "reason",
            "outside_windows",
            "granted_by",
            "granted_at",
            "valid_from",
            "valid_until",
        ]
        read_only_fields = fields


# --- releases ---------------------------------------------------------------------------------------


class ReleaseUnitSerializer(RecordSerializer):
    configuration_items = serializers.PrimaryKeyRelatedField(
        many=True, queryset=ConfigurationItem.objects.all(), required=False, help_text="The CIs the unit changes."
    )

    class Meta:
        model = ReleaseUnit
        fields = ["id", "name", "kind", "version", "reversible", "configuration_items", "notes"]
        validators = []


class RollbackPlanSerializer(RecordSerializer):
    class Meta:
        model = RollbackPlan
        fields = [
            "steps",
            "written_by",
            "rehearsal_note",
            "rehearsal_link",
            "rehearsed_at",
            "rehearsed_by",
            "updated",
        ]
        read_only_fields = fields


class GateEvidenceSerializer(RecordSerializer):
    class Meta:
        model = GateEvidence
        fields = [
            "id",
            "gate",
            "note",
            "link",
            "recorded_by",
            "recorded_by_tool",
            "recorded_at",
            "verified_by",
            "verified_at",
        ]
        read_only_fields = fields


RELEASE_SUMMARY_FIELDS = [
    "id",
    "name",
    "version",
    "release_type",
    "policy",
    "services",
    "planned_start",
    "planned_end",
    "release_manager",
    "requested_by",
    "state",
    "current_package",
    "packages_count",
    "changes_count",
    "approvals_count",
    "created",
    "updated",
]


class ReleaseSerializer(RecordSerializer):
    """A release as lists show it, from the rows of ``releases_list``: its services, current package, and how
    many packages, changes and approvals it has.
    """

    policy = serializers.IntegerField()
    services = serializers.ListField(child=serializers.IntegerField(), source="service_ids")
    release_manager = serializers.CharField(source="release_manager_username")
    requested_by = serializers.CharField(source="requested_by_username", allow_null=True)
    current_package = serializers.IntegerField(source="current_package_id", allow_null=True)
    packages_count = serializers.IntegerField()
    changes_count = serializers.IntegerField()
    approvals_count = serializers.IntegerField(help_text="Approvals of the plan that still count.")

    class Meta:
        model = Release
        fields = RELEASE_SUMMARY_FIELDS
        read_only_fields = fields


class ReleaseDetailSerializer(RecordSerializer):
    """One release: the plan, its units, rollback plan, gate evidence, ELS plan, and the caller's actions."""

    current_package = serializers.SerializerMethodField(help_text="The package that was not superseded.")
    packages_count = serializers.SerializerMethodField()
    changes_count = serializers.SerializerMethodField()
    approvals_count = serializers.SerializerMethodField(help_text="Approvals of the plan that still count.")
    units = ReleaseUnitSerializer(many=True, read_only=True)
    rollback_plan = serializers.SerializerMethodField()
    evidence = GateEvidenceSerializer(source="gate_evidence", many=True, read_only=True)
    actions = AvailableActionsField(release_available_actions)

    class Meta:
        model = Release
        fields = [
            *RELEASE_SUMMARY_FIELDS,
            "description",
            "release_notes",
            "els_staff",
            "els_exit_criteria",
            "els_min_duration_days",
            "submitted_at",
            "approved_at",
            "ready_at",
            "units",
            "rollback_plan",
            "evidence",
            "actions",
        ]
        read_only_fields = [
            "requested_by",
            "state",
            "created",
            "updated",
            "release_notes",
            "submitted_at",
            "approved_at",
            "ready_at",
        ]
        extra_kwargs = {"release_type": {"required": False}, "release_manager": {"required": False}}

    # ``release_details`` annotates these; a release read on its own, e.g. for a webhook, counts them.
    def get_current_package(self, release) -> int | None:
        if hasattr(release, "current_package_id"):
            return release.current_package_id
        package = release_current_package(release)
        return package.pk if package else None

    def get_packages_count(self, release) -> int:
        return release.packages_count if hasattr(release, "packages_count") else release.packages.count()

    def get_changes_count(self, release) -> int:
        return release.changes_count if hasattr(release, "changes_count") else release.changes.count()

    def get_approvals_count(self, release) -> int:
        if hasattr(release, "approvals_count"):
            return release.approvals_count
        return release_active_approvals(release).count()

    @extend_schema_field(RollbackPlanSerializer(allow_null=True))
    def get_rollback_plan(self, release):
        plan = getattr(release, "rollback_plan", None)
        return RollbackPlanSerializer(plan).data if plan is not None else None


class EvidenceSerializer(serializers.Serializer):
    who = serializers.CharField(help_text="The person or tool that satisfied (part of) the gate.")
    when = serializers.DateTimeField(allow_null=True)
    link = serializers.CharField(allow_blank=True)
    note = serializers.CharField(allow_blank=True)


class GateSerializer(serializers.Serializer):
    code = serializers.CharField()
    title = serializers.CharField()
    required = serializers.BooleanField(help_text="The policy requires it for this tier.")
    satisfied = serializers.BooleanField()
    status = serializers.CharField()
    evidence = EvidenceSerializer(many=True)


class ChecklistSerializer(serializers.Serializer):
    """The go/no-go checklist for one environment tier: every gate with its status and evidence."""

    release = serializers.IntegerField(source="release.pk")
    tier = serializers.CharField()
    green = serializers.BooleanField(help_text="Every gate the policy requires for this tier is satisfied.")
    unmet = serializers.ListField(child=serializers.CharField(), source="unmet_messages")
    gates = GateSerializer(many=True)


def checklist_of(release: Release, tier: str) -> dict:
    return ChecklistSerializer(checklist_evaluate(release, tier)).data


class RollbackPlanInput(serializers.Serializer):
    steps = serializers.CharField(help_text="The documented rollback steps (rewriting them clears the rehearsal).")


class RehearsalInput(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=REASON_MAX_LENGTH)
    link = LinkField(required=False, allow_blank=True, default="", max_length=500)
    rehearsed_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class GateEvidenceInput(serializers.Serializer):
    gate = serializers.ChoiceField(choices=GateCode.choices, default=GateCode.BACKUPS_VERIFIED)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=REASON_MAX_LENGTH)
    link = LinkField(required=False, allow_blank=True, default="", max_length=500)
    tool = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=100, help_text="The tool posting, e.g. backup-bot."
    )


class EvidenceVerifyInput(serializers.Serializer):
    evidence = serializers.PrimaryKeyRelatedField(queryset=GateEvidence.objects.all(), help_text="The evidence id.")


class BaselineTakeInput(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=BaselineKind.choices, help_text="Before the deployment, or after it (the release closes with one)."
    )


class StakeholdersNotifyInput(serializers.Serializer):
    message = serializers.CharField(required=False, allow_blank=True, default="", max_length=REASON_MAX_LENGTH)


class NotifiedSerializer(serializers.Serializer):
    notified = serializers.IntegerField(help_text="How many stakeholders were told.")


# --- packages and test runs -------------------------------------------------------------------------


class PackageArtifactSerializer(RecordSerializer):
    class Meta:
        model = PackageArtifact
        fields = ["id", "name", "uri", "sha256", "size_bytes"]
        extra_kwargs = {"sha256": {"validators": [], "max_length": 64, "min_length": 64}}
        validators = []


class CommitSerializer(serializers.Serializer):
    sha = serializers.CharField(max_length=64)
    author = serializers.CharField(max_length=200, required=False, allow_blank=True)
    committed_at = serializers.DateTimeField(required=False)
    message = serializers.CharField(max_length=REASON_MAX_LENGTH, required=False, allow_blank=True)

    def to_internal_value(self, data):
        commit = super().to_internal_value(data)
        if "committed_at" in commit:
            commit["committed_at"] = commit["committed_at"].isoformat()
        return commit


class TestRunSerializer(RecordSerializer):
    __test__ = False  # a serializer, not a test, though pytest would collect it by its name

    class Meta:
        model = TestRun
        fields = [
            "id",
            "package",
            "suite",
            "passed",
            "failed_critical",
            "failed_major",
            "failed_minor",
            "link",
            "run_at",
            "recorded_by",
            "recorded_at",
        ]
        read_only_fields = ["recorded_by", "recorded_at"]
        extra_kwargs = {"run_at": {"required": False}}


class PackageSerializer(RecordSerializer):
    artifacts = PackageArtifactSerializer(many=True, read_only=True)
    commits = CommitSerializer(many=True, read_only=True)

    class Meta:
        model = ReleasePackage
        fields = [
            "id",
            "release",
            "version",
            "state",
            "built_by",
            "artifacts",
            "commits",
            "work_items",
            "notes",
            "first_commit_at",
            "registered_at",
            "built_at",
            "validated_by",
            "validated_at",
            "rejected_by",
            "rejected_at",
            "rejection_reason",
            "superseded_by",
            "superseded_at",
        ]
        read_only_fields = [field for field in fields if field not in ("version", "work_items", "notes")]
        validators = []  # a new build supersedes the current one: the service decides, not a uniqueness check


class PackageDetailSerializer(PackageSerializer):
    latest_test_runs = serializers.SerializerMethodField(help_text="The latest run of each suite.")
    actions = AvailableActionsField(package_available_actions)

    class Meta(PackageSerializer.Meta):
        fields = [*PackageSerializer.Meta.fields, "latest_test_runs", "actions"]

    @extend_schema_field(TestRunSerializer(many=True))
    def get_latest_test_runs(self, package):
        return TestRunSerializer(latest_test_runs(package).values(), many=True).data


class PackageUpdateSerializer(PackageDetailSerializer):
    """What may change while a package is assembling or built: version, commits, work items, notes."""

    commits = CommitSerializer(many=True, required=False, max_length=MAX_ITEMS)
    work_items = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=MAX_ITEMS
    )


class PackageRegisterSerializer(PackageUpdateSerializer):
    """A build as a pipeline registers it, with its units, artifacts, commits and work items: all or nothing."""

    release = serializers.PrimaryKeyRelatedField(queryset=Release.objects.all())
    artifacts = PackageArtifactSerializer(many=True, required=False, max_length=MAX_ITEMS)
    units = ReleaseUnitSerializer(
        many=True,
        required=False,
        write_only=True,
        max_length=MAX_ITEMS,
        help_text="The release's units this build delivers; one named like an existing unit updates it.",
    )

    class Meta(PackageDetailSerializer.Meta):
        fields = [*PackageDetailSerializer.Meta.fields, "units"]
        read_only_fields = [
            field for field in PackageSerializer.Meta.read_only_fields if field not in ("release", "artifacts")
        ]


class ResultsLinkInput(serializers.Serializer):
    """Where the results can be read (the CI job); with an XML body, given as the ``link`` query parameter."""

    link = LinkField(required=False, allow_blank=True, default="", max_length=500)


class TestResultsInput(ResultsLinkInput):
    """JSON results; JUnit XML is posted as the body (``application/xml``) or a multipart ``file``."""

    __test__ = False

    suites = serializers.ListField(
        child=serializers.DictField(), help_text='[{"name": "regression", "passed": 120, "failed": {"major": 1}}]'
    )

    def validate_suites(self, suites):
        if not _nul_free(suites):
            raise serializers.ValidationError(StoredJSONField.default_error_messages["nul"])
        return suites


class TestResultsUploadInput(ResultsLinkInput):
    """A JUnit XML report as a multipart file (at most 10 MB)."""

    __test__ = False

    file = serializers.FileField()


# --- changes ----------------------------------------------------------------------------------------


class ChangeTemplateSerializer(RecordSerializer):
    pre_approved = serializers.BooleanField(read_only=True)

    class Meta:
        model = ChangeTemplate
        fields = [
            "id",
            "name",
            "description",
            "services",
            "risk",
            "active",
            "pre_approved",
            "created_by",
            "approved_by",
            "approved_at",
        ]
        read_only_fields = ["created_by", "approved_by", "approved_at"]
        validators = []


class ChangeSerializer(RecordSerializer):
    class Meta:
        model = ChangeRecord
        fields = [
            "id",
            "number",
            "change_type",
            "template",
            "title",
            "risk",
            "services",
            "configuration_items",
            "planned_start",
            "planned_end",
            "requested_by",
            "release",
            "state",
            "created",
        ]
        read_only_fields = ["number", "requested_by", "state", "created"]


class ChangeDetailSerializer(ChangeSerializer):
    actions = AvailableActionsField(change_available_actions)

    class Meta(ChangeSerializer.Meta):
        fields = [
            *ChangeSerializer.Meta.fields,
            "description",
            "impact",
            "requires_review",
            "assessment",
            "review_notes",
            "submitted_at",
            "assessed_at",
            "decided_at",
            "started_at",
            "ended_at",
            "reviewed_at",
            "closed_at",
            "actions",
        ]
        read_only_fields = [
            *ChangeSerializer.Meta.read_only_fields,
            "requires_review",
            "assessment",
            "review_notes",
            "submitted_at",
            "assessed_at",
            "decided_at",
            "started_at",
            "ended_at",
            "reviewed_at",
            "closed_at",
        ]
        extra_kwargs = {"title": {"required": False}, "template": {"required": False}}


class StandardChangeInput(serializers.Serializer):
    """A standard change from this template: its schedule, and optionally the release it carries."""

    planned_start = serializers.DateTimeField()
    planned_end = serializers.DateTimeField()
    title = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    release = serializers.PrimaryKeyRelatedField(queryset=Release.objects.all(), required=False, allow_null=True)
    services = serializers.PrimaryKeyRelatedField(many=True, queryset=Service.objects.all(), required=False)


class AssessInput(serializers.Serializer):
    assessment = serializers.CharField(required=False, allow_blank=True, default="", max_length=REASON_MAX_LENGTH)
    risk = serializers.ChoiceField(choices=Risk.choices, required=False)
    impact = serializers.CharField(required=False, allow_blank=True, max_length=REASON_MAX_LENGTH)


class ReviewInput(serializers.Serializer):
    notes = serializers.CharField(max_length=REASON_MAX_LENGTH, help_text="The post-implementation review.")


class FreezeOverrideInput(serializers.Serializer):
    reason = serializers.CharField(max_length=REASON_MAX_LENGTH)
    freeze = serializers.PrimaryKeyRelatedField(
        queryset=FreezePeriod.objects.all(),
        required=False,
        allow_null=True,
        default=None,
        help_text="One freeze; every freeze over the change's schedule when omitted.",
    )
    outside_windows = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Also deploy when no release window is open (emergency changes of emergency releases only).",
    )


class ApprovalSerializer(RecordSerializer):
    change = serializers.SlugRelatedField(slug_field="number", read_only=True, allow_null=True)

    class Meta:
        model = Approval
        fields = [
            "id",
            "release",
            "change",
            "approver",
            "decision",
            "role",
            "reason",
            "decided_at",
            "withdrawn_at",
            "withdrawn_reason",
        ]
        read_only_fields = fields


def template_available_actions(template: ChangeTemplate, actor) -> list[str]:
    """Pre-approve (the CAB, not its author, once), edit, and raise a standard change from it."""
    actions = []
    if actor.has_perm(perms.CHANGE_CHANGE_TEMPLATE):
        actions.append("update")
    if template.approved_at is None and actor.has_perm(perms.APPROVE_CHANGE) and template.created_by_id != actor.pk:
        actions.append("approve")
    if template.pre_approved and (actor.has_perm(perms.ADD_CHANGE) or actor.has_perm(perms.CREATE_STANDARD_CHANGE)):
        actions.append("create_change")
    return actions


class ChangeTemplateDetailSerializer(ChangeTemplateSerializer):
    actions = AvailableActionsField(template_available_actions)

    class Meta(ChangeTemplateSerializer.Meta):
        fields = [*ChangeTemplateSerializer.Meta.fields, "actions"]


for model, serializer in (
    (ReleasePolicy, ReleasePolicySerializer),
    (ReleaseWindow, ReleaseWindowSerializer),
    (FreezePeriod, FreezePeriodSerializer),
    (FreezeOverride, FreezeOverrideSerializer),
    (Release, ReleaseDetailSerializer),
    (ReleasePackage, PackageDetailSerializer),
    (TestRun, TestRunSerializer),
    (ChangeRecord, ChangeDetailSerializer),
    (ChangeTemplate, ChangeTemplateDetailSerializer),
    (Approval, ApprovalSerializer),
):
    representation_register(model, serializer)
