"""The rules releases are governed by: policies per release type, release windows and freeze periods."""

from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from cmdb.choices import EnvironmentTier
from rdm_site.roles import Role
from releases import recurrence
from releases.choices import ALL_GATES, GateCode, ReleaseType

# Lower tiers need fewer gates: tests before test and staging; the whole checklist before production.
DEFAULT_GATES_REQUIRED = {
    EnvironmentTier.DEVELOPMENT.value: [],
    EnvironmentTier.TEST.value: [GateCode.TESTS_PASSED.value],
    EnvironmentTier.STAGING.value: [GateCode.PACKAGE_VALIDATED.value, GateCode.TESTS_PASSED.value],
    EnvironmentTier.PRODUCTION.value: list(ALL_GATES),
}
DEFAULT_ELS_EXIT_CRITERIA = {"max_open_p1_p2": 0, "max_incidents": 3}


def default_gates_required() -> dict[str, list[str]]:
    return {tier: list(gates) for tier, gates in DEFAULT_GATES_REQUIRED.items()}


def default_approver_roles() -> list[str]:
    return [Role.RELEASE_MANAGER.value, Role.SERVICE_OWNER.value]


def default_els_exit_criteria() -> dict:
    return dict(DEFAULT_ELS_EXIT_CRITERIA)


def validate_approver_roles(value) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError("List at least one role whose members may approve.", code="no_roles")
    unknown = sorted({str(role) for role in value} - set(Role.values))
    if unknown:
        raise ValidationError(f"Unknown role(s): {', '.join(unknown)}. Known: {', '.join(Role.values)}.")


def validate_gates_required(value) -> None:
    if not isinstance(value, dict):
        raise ValidationError("Gates required must be a JSON object: environment tier → list of gate codes.")
    problems = [f"unknown tier {tier!r}" for tier in value if tier not in EnvironmentTier.values]
    for tier, gates in value.items():
        if not isinstance(gates, list):
            problems.append(f"the gates of {tier!r} must be a list")
            continue
        problems += [f"unknown gate {gate!r} for {tier!r}" for gate in gates if gate not in ALL_GATES]
    if problems:
        raise ValidationError(f"{'; '.join(problems)}. Known gates: {', '.join(ALL_GATES)}.")


def validate_string_list(value) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ValidationError("Give a JSON list of non-empty names.")


def validate_exit_criteria(value) -> None:
    if not isinstance(value, dict):
        raise ValidationError('Exit criteria must be a JSON object, e.g. {"max_open_p1_p2": 0, "max_incidents": 3}.')
    wrong = [key for key, number in value.items() if not isinstance(number, int) or number < 0]
    if wrong:
        raise ValidationError(f"Exit criteria are counts (whole numbers ≥ 0); check {', '.join(sorted(wrong))}.")


class ReleasePolicy(models.Model):
    """How a type of release is governed: who approves and how many, which gates each tier needs, how
    long before the start it must be submitted, the early life support it gets by default, and how long after
    a production deployment an incident may still be tied to it.

    A release names its policy, so changing a policy changes the bar for every release still under way.
    """

    name = models.CharField("name", max_length=100, unique=True)
    release_type = models.CharField("release type", max_length=20, choices=ReleaseType.choices)
    description = models.TextField("description", blank=True)
    approvals_required = models.PositiveSmallIntegerField(
        "approvals required",
        default=1,
        help_text="The quorum: how many distinct people must approve a release plan.",
    )
    approver_roles = models.JSONField(
        "roles that may approve",
        default=default_approver_roles,
        validators=[validate_approver_roles],
        help_text="Role names whose members may approve or reject a release plan of this type.",
    )
    gates_required = models.JSONField(
        "gates required per tier",
        default=default_gates_required,
        validators=[validate_gates_required],
        help_text="Environment tier → list of gate codes. A tier not listed requires no gate.",
    )
    lead_time_days = models.PositiveSmallIntegerField(
        "lead time (days)", default=5, help_text="Minimum days between submitting a release and its planned start."
    )
    required_test_suites = models.JSONField(
        "required test suites",
        default=list,
        blank=True,
        validators=[validate_string_list],
        help_text="Suites whose latest run must pass; empty: every suite that ran (at least one).",
    )
    els_duration_days = models.PositiveSmallIntegerField("default ELS duration (days)", default=7)
    els_min_duration_days = models.PositiveSmallIntegerField("default ELS minimum duration (days)", default=3)
    els_exit_criteria = models.JSONField(
        "default ELS exit criteria",
        default=default_els_exit_criteria,
        validators=[validate_exit_criteria],
        help_text='For example {"max_open_p1_p2": 0, "max_incidents": 3}.',
    )
    hotfix_window_days = models.PositiveSmallIntegerField(
        "hotfix window (days)",
        default=14,
        help_text="A patch or emergency release of a service within this many days is a hotfix.",
    )
    incident_correlation_hours = models.PositiveSmallIntegerField(
        "incident correlation window (hours)",
        default=72,
        validators=[MinValueValidator(1, "The correlation window is at least one hour.")],
        help_text="An incident naming no deployment is tied to a production deployment of this type of release "
        "that succeeded at most this many hours before it opened.",
    )
    pir_due_days = models.PositiveSmallIntegerField(
        "review due (days)",
        default=5,
        help_text="Days after early life support exits by which the service owner submits the review.",
    )
    active = models.BooleanField("active", default=True)

    class Meta:
        verbose_name = "release policy"
        verbose_name_plural = "release policies"
        ordering = ["release_type", "name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(approvals_required__gte=1), name="releases_policy_quorum_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(incident_correlation_hours__gte=1),
                name="releases_policy_correlation_window_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("releases:policy_detail", args=[self.pk])

    def gates_for(self, tier: str) -> list[str]:
        """The gate codes this policy requires before a deployment to ``tier``, in checklist order."""
        wanted = set((self.gates_required or {}).get(str(tier), []))
        return [gate for gate in ALL_GATES if gate in wanted]


class ReleaseWindow(models.Model):
    """A recurring maintenance window (RFC 5545 DTSTART + RRULE) in its own time zone.

    Production deployments may start only inside a window; lower tiers need one only when a window
    lists them. The first date and start time are the local DTSTART, so the window keeps its local
    hour across daylight saving changes (see ``releases.recurrence``).
    """

    name = models.CharField("name", max_length=100, unique=True)
    description = models.TextField("description", blank=True)
    first_date = models.DateField("first date", help_text="The local date of the first occurrence (DTSTART).")
    start_time = models.TimeField("start time", help_text="Local start time in the window's time zone.")
    rrule = models.CharField(
        "recurrence rule",
        max_length=500,
        help_text="An RFC 5545 RRULE value, e.g. FREQ=WEEKLY;BYDAY=TU,TH.",
    )
    duration = models.DurationField("duration", help_text="How long each occurrence stays open (elapsed time).")
    time_zone = models.CharField("time zone", max_length=64, default="Europe/London", help_text="An IANA zone name.")
    services = models.ManyToManyField(
        "cmdb.Service",
        blank=True,
        related_name="release_windows",
        verbose_name="services",
        help_text="Empty: the window serves every service.",
    )
    environments = models.ManyToManyField(
        "cmdb.Environment",
        related_name="release_windows",
        verbose_name="environments",
        help_text="The environments this window opens for.",
    )
    active = models.BooleanField("active", default=True)

    class Meta:
        verbose_name = "release window"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("releases:window_detail", args=[self.pk])

    def clean(self) -> None:
        super().clean()
        errors = {}
        try:
            recurrence.zone(self.time_zone)
        except recurrence.RecurrenceError as error:
            errors["time_zone"] = str(error)
        if self.first_date and self.start_time and self.rrule:
            try:
                recurrence.build_rule(self.first_date, self.start_time, self.rrule)
                self.rrule = recurrence.normalise_rrule(self.rrule)
            except recurrence.RecurrenceError as error:
                errors["rrule"] = str(error)
        if self.duration is not None and not timedelta(0) < self.duration <= timedelta(days=7):
            errors["duration"] = "A window lasts more than zero and at most seven days."
        if errors:
            raise ValidationError(errors)

    def _recurrence(self) -> dict:
        return {
            "first_date": self.first_date,
            "start_time": self.start_time,
            "rule": self.rrule,
            "duration": self.duration,
            "tz_name": self.time_zone,
        }

    def occurrence_at(self, at: datetime) -> recurrence.Occurrence | None:
        """The occurrence open at ``at`` (start inclusive, end exclusive), or None."""
        return recurrence.occurrence_at(at=at, **self._recurrence())

    def occurrences_between(self, start: datetime, end: datetime) -> list[recurrence.Occurrence]:
        return recurrence.occurrences_between(start=start, end=end, **self._recurrence())

    def next_occurrence(self, after: datetime | None = None) -> recurrence.Occurrence | None:
        return recurrence.next_occurrence(after=after or timezone.now(), **self._recurrence())

    @property
    def rfc5545(self) -> str:
        return recurrence.rfc5545_text(self.first_date, self.start_time, self.rrule, self.time_zone)


class FreezePeriod(models.Model):
    """A blackout: no deployment to the services and environments it covers between start and end.

    Empty services or environments mean all of them. Only an emergency approver may override a
    freeze, for one change, with a recorded reason (``FreezeOverride``).
    """

    name = models.CharField("name", max_length=100)
    start = models.DateTimeField("start")
    end = models.DateTimeField("end", help_text="Exclusive: deployments may start again at this moment.")
    reason = models.TextField("reason")
    services = models.ManyToManyField(
        "cmdb.Service", blank=True, related_name="freeze_periods", verbose_name="services", help_text="Empty: all."
    )
    environments = models.ManyToManyField(
        "cmdb.Environment",
        blank=True,
        related_name="freeze_periods",
        verbose_name="environments",
        help_text="Empty: all.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="freeze_periods_created",
        verbose_name="created by",
    )

    class Meta:
        verbose_name = "freeze period"
        ordering = ["start"]
        permissions = [("override_freeze", "Can let one change deploy despite a freeze, with a recorded reason")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end__gt=models.F("start")), name="releases_freeze_end_after_start"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("releases:freeze_detail", args=[self.pk])

    def clean(self) -> None:
        super().clean()
        if self.start and self.end and self.end <= self.start:
            raise ValidationError({"end": "A freeze ends after it starts."})

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end
