"""The release package: the tested bundle, its artifacts with digests, the commits in it, its test runs."""

import copy
from datetime import UTC, datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from releases.choices import PACKAGE_EDITABLE_STATES, PackageState, PackageTransition
from releases.exceptions import PackageImmutable

validate_sha256 = RegexValidator(
    r"^[0-9a-f]{64}$", "A SHA-256 digest is 64 lower-case hexadecimal characters.", code="bad_digest"
)


def _commit_time(commit: dict) -> datetime | None:
    """A commit's ``committed_at`` (ISO 8601; without an offset, UTC), or None when absent or unreadable."""
    value = commit.get("committed_at")
    try:
        moment = parse_datetime(str(value)) if value else None
    except ValueError:
        return None
    if moment is not None and timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return moment


def first_commit_time(commits: list) -> datetime | None:
    """The earliest commit time among ``commits``: where DORA's lead time for changes starts."""
    times = [moment for commit in commits if isinstance(commit, dict) and (moment := _commit_time(commit))]
    return min(times, default=None)


def validate_commits(value) -> None:
    """Commits as a JSON list of {"sha", "message", "author", "committed_at"} objects."""
    if not isinstance(value, list):
        raise ValidationError("Commits must be a JSON list.")
    problems = []
    for index, commit in enumerate(value):
        if not isinstance(commit, dict) or not str(commit.get("sha", "")).strip():
            problems.append(f"commit #{index + 1} needs at least a 'sha'")
        elif unknown := set(commit) - {"sha", "message", "author", "committed_at"}:
            problems.append(f"commit #{index + 1} has unknown keys {', '.join(sorted(unknown))}")
        elif commit.get("committed_at") and _commit_time(commit) is None:
            problems.append(f"commit #{index + 1}: 'committed_at' is not an ISO 8601 date and time")
    if problems:
        raise ValidationError("; ".join(problems))


def validate_work_items(value) -> None:
    if not isinstance(value, list) or not all(isinstance(key, str) and key.strip() for key in value):
        raise ValidationError('Work items must be a JSON list of keys, e.g. ["SHOP-123"].')


class ReleasePackage(ConcurrentTransitionMixin, models.Model):
    """One build of the release: registered by the pipeline, built, then validated or rejected by someone
    other than its builder. Registering a new package supersedes the previous one.

    Once validated (or rejected, or superseded) its content is frozen: it is what was tested and
    approved, and a change would silently invalidate both. ``save`` refuses such edits.
    """

    CONTENT_FIELDS = ("release_id", "version", "commits", "work_items", "built_by_id", "notes")

    release = models.ForeignKey(
        "releases.Release", on_delete=models.CASCADE, related_name="packages", verbose_name="release"
    )
    version = models.CharField("version or build number", max_length=100)
    state = FSMField(
        "state", max_length=20, choices=PackageState.choices, default=PackageState.ASSEMBLING, protected=True
    )
    built_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="packages_built", verbose_name="built by"
    )
    commits = models.JSONField("commits", default=list, blank=True, validators=[validate_commits])
    work_items = models.JSONField("work items", default=list, blank=True, validators=[validate_work_items])
    notes = models.TextField("notes", blank=True)
    first_commit_at = models.DateTimeField(
        "first commit at",
        null=True,
        blank=True,
        help_text="The earliest commit time in the package, where known: where DORA's lead time starts.",
    )
    registered_at = models.DateTimeField("registered at", default=timezone.now)
    built_at = models.DateTimeField("built at", null=True, blank=True)
    validated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="packages_validated",
        verbose_name="validated by",
    )
    validated_at = models.DateTimeField("validated at", null=True, blank=True)
    rejected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="packages_rejected",
        verbose_name="rejected by",
    )
    rejected_at = models.DateTimeField("rejected at", null=True, blank=True)
    rejection_reason = models.TextField("rejection reason", blank=True)
    superseded_by = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="supersedes",
        verbose_name="superseded by",
    )
    superseded_at = models.DateTimeField("superseded at", null=True, blank=True)

    class Meta:
        verbose_name = "release package"
        ordering = ["release", "-registered_at", "-id"]
        indexes = [
            # the validators' queue (oldest first) and its count, read from the index alone
            models.Index(
                fields=["registered_at", "id"],
                include=["built_by"],
                condition=models.Q(state=PackageState.BUILT),
                name="releases_package_built_queue",
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["release", "version"], name="releases_package_unique_version"),
            # A release has at most one current package: every other one was superseded.
            models.UniqueConstraint(
                fields=["release"],
                condition=~models.Q(state=PackageState.SUPERSEDED),
                name="releases_package_one_current",
            ),
        ]
        permissions = [
            ("register_package", "Can register packages, units, artifacts and test results"),
            ("validate_package", "Can validate or reject a package built by someone else"),
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._remember_loaded()

    def __str__(self) -> str:
        return f"{self.release} build {self.version}" if self.release_id else self.version

    def save(self, *args, **kwargs):
        frozen = not self._state.adding and self._loaded_state not in PACKAGE_EDITABLE_STATES
        if frozen and self._content() != self._loaded_content:
            raise PackageImmutable(self)
        super().save(*args, **kwargs)
        self._remember_loaded()

    def get_absolute_url(self) -> str:
        return reverse("releases:package_detail", args=[self.pk])

    def _content(self) -> dict:
        return {name: copy.deepcopy(self.__dict__.get(name)) for name in self.CONTENT_FIELDS}

    def _remember_loaded(self) -> None:
        self._loaded_state = self.__dict__.get("state")
        self._loaded_content = self._content()

    @property
    def editable(self) -> bool:
        return self.state in PACKAGE_EDITABLE_STATES

    def clean_fields(self, exclude=None):
        super().clean_fields(exclude={*(exclude or ()), "state"})

    def refresh_from_db(self, *args, **kwargs):
        super().refresh_from_db(*args, **kwargs)
        self._remember_loaded()

    # --- lifecycle: each method only moves the state (and stamps the moment) ------------------

    @transition(field=state, source=PackageState.ASSEMBLING, target=PackageState.BUILT)
    def mark_built(self) -> None:
        """Every artifact is in place with its digest: the package may now be tested and validated."""
        self.built_at = timezone.now()

    @transition(field=state, source=PackageState.BUILT, target=PackageState.VALIDATED)
    def validate(self, by=None) -> None:
        """Someone other than the builder vouches for it; from now on the package is immutable."""
        self.validated_by, self.validated_at = by, timezone.now()

    @transition(field=state, source=PackageState.BUILT, target=PackageState.REJECTED)
    def reject(self, by=None, rejection_reason: str = "") -> None:
        """Not fit to deploy; a new package must be registered."""
        self.rejected_by, self.rejected_at, self.rejection_reason = by, timezone.now(), rejection_reason

    @transition(
        field=state,
        source=[PackageState.ASSEMBLING, PackageState.BUILT, PackageState.VALIDATED, PackageState.REJECTED],
        target=PackageState.SUPERSEDED,
    )
    def supersede(self, by=None) -> None:
        """A rebuild was registered; this package stays as history only."""
        self.superseded_by, self.superseded_at = by, timezone.now()

    @classmethod
    def transition_sources(cls, name: PackageTransition | str) -> list[str]:
        return sorted(t.source for t in cls._meta.get_field("state").get_all_transitions(cls) if t.name == name)


class PackageArtifact(models.Model):
    """A file of the package (an image, a bundle, a migration script) and the digest that proves which one.

    Added while the package is assembling or built; refused once it is validated (``PackageImmutable``).
    """

    package = models.ForeignKey(
        ReleasePackage, on_delete=models.CASCADE, related_name="artifacts", verbose_name="package"
    )
    name = models.CharField("name", max_length=200)
    uri = models.CharField("URI", max_length=1000, help_text="Where the artifact is stored (https, oci, s3…).")
    sha256 = models.CharField("SHA-256 digest", max_length=64, validators=[validate_sha256])
    size_bytes = models.PositiveBigIntegerField("size (bytes)", null=True, blank=True)

    class Meta:
        verbose_name = "package artifact"
        ordering = ["package", "name"]
        constraints = [
            models.UniqueConstraint(fields=["package", "name"], name="releases_artifact_unique_name"),
            models.CheckConstraint(
                condition=models.Q(sha256__regex=r"^[0-9a-f]{64}$"), name="releases_artifact_sha256"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self._ensure_package_editable(f"add or change artifact {self.name!r} of")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._ensure_package_editable(f"remove artifact {self.name!r} from")
        return super().delete(*args, **kwargs)

    def _ensure_package_editable(self, attempt: str) -> None:
        package = ReleasePackage.objects.get(pk=self.package_id)
        if not package.editable:
            raise PackageImmutable(package, attempt)


class TestRun(models.Model):
    """One run of a test suite against a package (Service Validation and Testing), failures by severity.

    The tests gate reads the latest run of each suite the policy requires.
    """

    __test__ = False  # not a pytest test class, despite the name

    package = models.ForeignKey(
        ReleasePackage, on_delete=models.CASCADE, related_name="test_runs", verbose_name="package"
    )
    suite = models.CharField("suite", max_length=100)
    failed_critical = models.PositiveIntegerField("failed (critical)", default=0)
    failed_major = models.PositiveIntegerField("failed (major)", default=0)
    failed_minor = models.PositiveIntegerField("failed (minor)", default=0)
    passed = models.PositiveIntegerField("passed", default=0)
    link = models.URLField("link", max_length=500, blank=True)
    run_at = models.DateTimeField("run at", default=timezone.now)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="test_runs_recorded",
        verbose_name="recorded by",
    )
    recorded_at = models.DateTimeField("recorded at", auto_now_add=True)

    class Meta:
        verbose_name = "test run"
        ordering = ["package", "suite", "-run_at", "-id"]
        indexes = [models.Index(fields=["package", "suite", "-run_at"], name="releases_testrun_latest")]

    def __str__(self) -> str:
        return f"{self.suite} on {self.package} at {self.run_at:%Y-%m-%d %H:%M}"

    @property
    def passes_gate(self) -> bool:
        """Critical and major failures block a release; minor ones do not."""
        return self.failed_critical == 0 and self.failed_major == 0

    @property
    def summary(self) -> str:
        return (
            f"{self.passed} passed, failed: {self.failed_critical} critical, {self.failed_major} major, "
            f"{self.failed_minor} minor"
        )
