"""Service and Asset Configuration Management: environments, services, CIs, their relationships, baselines.

Writes go through ``cmdb.services``, reads through ``cmdb.selectors``.
"""

import math
from collections.abc import Iterator

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from cmdb.choices import CiState, CiTransition, CiType, Criticality, EnvironmentTier, RelationshipKind


def json_scalars(value) -> Iterator:
    """Every key and every leaf value of a parsed JSON document, in no particular order."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend([*item.keys(), *item.values()])
        elif isinstance(item, list):
            pending.extend(item)
        else:
            yield item


def validate_json_object(value) -> None:
    """A JSON object PostgreSQL can store: no NUL character in its text, no infinite or NaN number."""
    if not isinstance(value, dict):
        raise ValidationError("Attributes must be a JSON object (name → value).", code="not_an_object")
    for item in json_scalars(value):
        if isinstance(item, str) and "\x00" in item:
            raise ValidationError("Attributes may not contain a NUL character.", code="nul_character")
        if isinstance(item, float) and not math.isfinite(item):
            raise ValidationError("Attribute numbers must be finite.", code="not_finite")


class Environment(models.Model):
    """A place releases are promoted through; the promotion order is the path a release takes to production."""

    name = models.CharField("name", max_length=100, unique=True)
    slug = models.SlugField("slug", max_length=100, unique=True)
    tier = models.CharField("tier", max_length=20, choices=EnvironmentTier.choices)
    promotion_order = models.PositiveSmallIntegerField(
        "promotion order", unique=True, help_text="Releases move through environments in ascending order."
    )
    description = models.TextField("description", blank=True)

    class Meta:
        ordering = ["promotion_order"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        """An environment's page is the list of its CIs."""
        return f"{reverse('cmdb:ci_list')}?environment={self.pk}"


class Service(models.Model):
    """A business service: what users of the company actually consume, and the unit releases are planned for.

    Its owner is accountable for it (and maintains its CIs); stakeholders are told about its releases.
    """

    name = models.CharField("name", max_length=100, unique=True)
    slug = models.SlugField("slug", max_length=100, unique=True)
    description = models.TextField("description", blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_services", verbose_name="service owner"
    )
    stakeholders = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="stakeholder_services", verbose_name="stakeholders"
    )
    criticality = models.CharField(
        "criticality", max_length=20, choices=Criticality.choices, default=Criticality.MEDIUM
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("cmdb:service_detail", args=[self.pk])


class ConfigurationItem(ConcurrentTransitionMixin, models.Model):
    """Anything that must be managed to deliver a service: an application, a database, a server...

    Unique by name within its environment, because "orders-db" in staging and in production are
    different things. The lifecycle state only moves through the transitions below, and a save
    that raced another transition fails (``ConcurrentTransitionMixin``) instead of undoing it.
    """

    name = models.CharField("name", max_length=200)
    ci_type = models.CharField("type", max_length=20, choices=CiType.choices)
    state = FSMField("state", max_length=20, choices=CiState.choices, default=CiState.PLANNED, protected=True)
    version = models.CharField("version", max_length=100, blank=True)
    attributes = models.JSONField(
        "attributes", default=dict, blank=True, validators=[validate_json_object], help_text="A JSON object."
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="owned_configuration_items",
        verbose_name="technical owner",
    )
    environment = models.ForeignKey(
        Environment, on_delete=models.PROTECT, related_name="configuration_items", verbose_name="environment"
    )
    service = models.ForeignKey(
        Service,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="configuration_items",
        verbose_name="service",
        help_text="The business service this CI belongs to; its owner may maintain the CI.",
    )
    created = models.DateTimeField("created", auto_now_add=True)
    updated = models.DateTimeField("updated", auto_now=True)

    class Meta:
        verbose_name = "configuration item"
        ordering = ["environment__promotion_order", "name"]
        constraints = [
            models.UniqueConstraint(fields=["name", "environment"], name="cmdb_ci_unique_name_per_environment"),
            models.CheckConstraint(
                condition=models.Q(state__in=CiState.values),
                name="cmdb_ci_state_known",
                violation_error_message=f"The state must be one of: {', '.join(CiState.values)}.",
            ),
        ]
        # the list's order (environments in promotion order, then names): each environment's CIs read in name
        # order from the index, not sorted (docs/performance.md)
        indexes = [models.Index(fields=["environment", "name", "id"], name="cmdb_ci_environment_name")]
        permissions = [
            ("import_configurationitems", "Can import configuration items from a file"),
            ("edit_any_configurationitem", "Can edit configuration items of any service, not only of owned ones"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.environment})"

    def get_absolute_url(self) -> str:
        return reverse("cmdb:ci_detail", args=[self.pk])

    def clean_fields(self, exclude=None):
        # Cleaning re-assigns every field, which the protected state field refuses; the
        # cmdb_ci_state_known constraint checks the state instead.
        super().clean_fields(exclude={*(exclude or ()), "state"})

    # --- lifecycle: each method only moves the state ------------------------------------------

    @transition(field=state, source=CiState.PLANNED, target=CiState.IN_BUILD)
    def build(self) -> None:
        """Work on the CI has started: it is being provisioned, installed or configured."""

    @transition(field=state, source=CiState.IN_BUILD, target=CiState.LIVE)
    def go_live(self) -> None:
        """The CI now serves: from here on, breaking it hurts the services that depend on it."""

    @transition(field=state, source=CiState.LIVE, target=CiState.MAINTENANCE)
    def start_maintenance(self) -> None:
        """Planned work takes the CI out of normal service for a while; it is expected back."""

    @transition(field=state, source=CiState.MAINTENANCE, target=CiState.LIVE)
    def end_maintenance(self) -> None:
        """The planned work is done and the CI serves again."""

    @transition(
        field=state,
        source=[CiState.PLANNED, CiState.IN_BUILD, CiState.LIVE, CiState.MAINTENANCE],
        target=CiState.RETIRED,
    )
    def retire(self) -> None:
        """The CI leaves service for good. ITIL never deletes a CI record, so every state may end here:
        a plan that is dropped, a build that is abandoned, a live CI that is decommissioned, and one
        whose maintenance shows it is not worth bringing back.
        """

    @classmethod
    def transition_between(cls, source: str, target: str) -> CiTransition | None:
        """The one transition that leads from ``source`` straight to ``target``, if there is one."""
        for candidate in cls._meta.get_field("state").get_all_transitions(cls):
            if candidate.source == source and candidate.target == target:
                return CiTransition(candidate.name)
        return None


class Relationship(models.Model):
    """A directed link between two CIs, read "<source> <kind> <target>" ("web-shop depends_on orders-db").

    Impact travels against a dependency: when the target of depends_on / runs_on breaks, the source
    is hurt. ``cmdb.choices.IMPACT_DIRECTIONS`` says how each kind carries impact.
    Relationships are never edited, only added and removed, so each one is one fact with one history.
    """

    source = models.ForeignKey(
        ConfigurationItem,
        on_delete=models.CASCADE,
        related_name="outgoing_relationships",
        verbose_name="source CI",
        db_index=False,  # the unique constraint's index starts with the source
    )
    target = models.ForeignKey(
        ConfigurationItem,
        on_delete=models.CASCADE,
        related_name="incoming_relationships",
        verbose_name="target CI",
        db_index=False,  # indexed with the kind below: impact analysis looks up both together
    )
    kind = models.CharField("kind", max_length=20, choices=RelationshipKind.choices)
    created = models.DateTimeField("created", auto_now_add=True)

    class Meta:
        ordering = ["source__name", "kind", "target__name"]
        constraints = [
            models.UniqueConstraint(fields=["source", "target", "kind"], name="cmdb_relationship_unique"),
            models.CheckConstraint(condition=~models.Q(source=models.F("target")), name="cmdb_relationship_not_self"),
        ]
        indexes = [models.Index(fields=["target", "kind"], name="cmdb_relationship_target_kind")]

    def __str__(self) -> str:
        return f"{self.source.name} {self.get_kind_display()} {self.target.name}"


class Baseline(models.Model):
    """A snapshot of a set of CIs at a moment, taken before and after each release so the two can be compared.

    The snapshot is copied into its items, so it stays true whatever later happens to the CIs.
    """

    name = models.CharField("name", max_length=200)
    scope = models.CharField("scope", max_length=300, help_text="Which CIs the baseline covers.")
    taken_at = models.DateTimeField("taken at", default=timezone.now)
    taken_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="baselines_taken",
        verbose_name="taken by",
        help_text="Empty when RDM took it by itself (for example after a production deployment).",
    )
    reason = models.TextField("reason", blank=True)

    class Meta:
        ordering = ["-taken_at"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("cmdb:baseline_detail", args=[self.pk])


class BaselineItem(models.Model):
    """One CI as it was when its baseline was taken.

    It refers to the CI by id, not by foreign key, so a baseline still shows CIs deleted since.
    """

    baseline = models.ForeignKey(Baseline, on_delete=models.CASCADE, related_name="items", verbose_name="baseline")
    ci_id = models.BigIntegerField("CI id", db_index=True)  # the CI primary key is a BigAutoField
    ci_name = models.CharField("name", max_length=200)
    environment_name = models.CharField("environment", max_length=100)
    service_name = models.CharField("service", max_length=100, blank=True)
    ci_type = models.CharField("type", max_length=20, choices=CiType.choices)
    state = models.CharField("state", max_length=20, choices=CiState.choices)
    version = models.CharField("version", max_length=100, blank=True)
    attributes = models.JSONField("attributes", default=dict, blank=True)

    class Meta:
        ordering = ["environment_name", "ci_name"]
        constraints = [models.UniqueConstraint(fields=["baseline", "ci_id"], name="cmdb_baseline_item_unique_ci")]

    def __str__(self) -> str:
        return f"{self.ci_name} ({self.environment_name})"
