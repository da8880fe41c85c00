"""Packages, their artifacts and test runs, registered by Build/CI Engineers through the services: the admin
asks the service's own question (``releases.register_package``), so whoever may register may use these pages.
"""

from django import forms
from django.contrib import admin

from rdm_site.admin_support import ReadOnlyInline, ServiceBackedAdmin, service_action
from releases import permissions as perms
from releases import services
from releases.models import PackageArtifact, ReleasePackage, TestRun


class ArtifactForm(forms.ModelForm):
    class Meta:
        model = PackageArtifact
        fields = ["name", "uri", "sha256", "size_bytes"]

    def clean_sha256(self):
        """The same digest in upper case is accepted, stored in lower case (as the service does)."""
        return self.cleaned_data["sha256"].strip().lower()


class PackageArtifactForm(ArtifactForm):
    class Meta(ArtifactForm.Meta):
        fields = ["package", *ArtifactForm.Meta.fields]


class ArtifactInline(admin.TabularInline):
    """New artifacts only, each added by ``package_artifact_add`` (audited with its digest); an artifact
    once added stays what it is.
    """

    model = PackageArtifact
    form = ArtifactForm
    extra = 0
    fields = ["name", "uri", "sha256", "size_bytes"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return (obj is None or obj.editable) and request.user.has_perm(perms.REGISTER_PACKAGE)

    def has_change_permission(self, request, obj=None):
        return False


class TestRunInline(ReadOnlyInline):
    model = TestRun
    fields = ["suite", "failed_critical", "failed_major", "failed_minor", "passed", "link", "run_at", "recorded_by"]


def _artifact_add(package: ReleasePackage, actor, data: dict) -> PackageArtifact:
    return services.package_artifact_add(
        package=package,
        actor=actor,
        name=data["name"],
        uri=data["uri"],
        sha256=data["sha256"],
        size_bytes=data.get("size_bytes"),
    )


@admin.register(ReleasePackage)
class ReleasePackageAdmin(ServiceBackedAdmin):
    list_display = ["__str__", "state", "built_by", "registered_at", "validated_by"]
    list_filter = ["state"]
    search_fields = ["version", "release__name"]
    inlines = [ArtifactInline, TestRunInline]
    add_permission = change_permission = perms.REGISTER_PACKAGE
    actions = [
        service_action(
            "Mark built",
            lambda p, u: services.package_mark_built(package=p, actor=u),
            permission=perms.REGISTER_PACKAGE,
        ),
        service_action(
            "Validate",
            lambda p, u: services.package_validate(package=p, actor=u),
            permission=perms.VALIDATE_PACKAGE,
        ),
        service_action(
            "Reject package",
            lambda p, u, reason: services.package_reject(package=p, actor=u, reason=reason),
            reason="Why is the package rejected?",
            permission=perms.VALIDATE_PACKAGE,
        ),
    ]
    STATE_FIELDS = [
        "state",
        "built_by",
        "registered_at",
        "first_commit_at",
        "built_at",
        "validated_by",
        "validated_at",
        "rejected_by",
        "rejected_at",
        "rejection_reason",
        "superseded_by",
        "superseded_at",
    ]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not obj.editable:  # a validated package is immutable: show, never edit
            return [*self.STATE_FIELDS, "release", "version", "commits", "work_items", "notes"]
        return [*self.STATE_FIELDS, "release"] if obj is not None else self.STATE_FIELDS

    def create(self, request, form):
        data = form.cleaned_data
        return services.package_register(
            release=data["release"],
            actor=request.user,
            version=data["version"],
            commits=data.get("commits") or [],
            work_items=data.get("work_items") or [],
            notes=data.get("notes", ""),
        )

    def update(self, request, obj, data):
        return services.package_update(package=obj, actor=request.user, data=data)

    def save_formset(self, request, form, formset, change):
        if formset.model is not PackageArtifact:
            return super().save_formset(request, form, formset, change)
        # The admin's history message reads what the formset saved: the artifacts the service added.
        formset.new_objects = [
            _artifact_add(form.instance, request.user, artifact_form.cleaned_data)
            for artifact_form in formset.extra_forms
            if artifact_form.has_changed() and artifact_form.is_valid()
        ]
        formset.changed_objects, formset.deleted_objects = [], []
        return formset.new_objects


@admin.register(PackageArtifact)
class PackageArtifactAdmin(ServiceBackedAdmin):
    list_display = ["name", "package", "sha256", "uri"]
    search_fields = ["name", "sha256"]
    form = PackageArtifactForm
    add_permission = perms.REGISTER_PACKAGE

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)  # added once, never edited

    def create(self, request, form):
        return _artifact_add(form.cleaned_data["package"], request.user, form.cleaned_data)


@admin.register(TestRun)
class TestRunAdmin(ServiceBackedAdmin):
    list_display = ["suite", "package", "failed_critical", "failed_major", "failed_minor", "passed", "run_at"]
    list_filter = ["suite"]
    readonly_fields = ["recorded_by", "recorded_at"]
    add_permission = perms.REGISTER_PACKAGE

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)  # recorded once, never edited

    def create(self, request, form):
        data = form.cleaned_data
        return services.test_run_record(
            package=data["package"],
            actor=request.user,
            suite=data["suite"],
            passed=data.get("passed", 0),
            failed_critical=data.get("failed_critical", 0),
            failed_major=data.get("failed_major", 0),
            failed_minor=data.get("failed_minor", 0),
            link=data.get("link", ""),
            run_at=data.get("run_at"),
        )
