"""Decisions on release plans and change records: who decided what, when and why, and their withdrawal."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from releases.choices import Decision


class Approval(models.Model):
    """One approver's decision on a release plan or a change record.

    Each person counts once: while a decision is active (not withdrawn) the database refuses a second
    one by the same person on the same record. When the plan or package changes the approvals are
    withdrawn, not deleted, so the history shows what was approved and why it no longer counts.
    """

    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approvals", verbose_name="approver"
    )
    release = models.ForeignKey(
        "releases.Release",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="approvals",
        verbose_name="release",
    )
    change = models.ForeignKey(
        "releases.ChangeRecord",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="approvals",
        verbose_name="change",
    )
    decision = models.CharField("decision", max_length=10, choices=Decision.choices)
    role = models.CharField("decided as", max_length=50, blank=True, help_text="The role the approver decided in.")
    reason = models.TextField("reason", blank=True)
    decided_at = models.DateTimeField("decided at", default=timezone.now)
    withdrawn_at = models.DateTimeField("withdrawn at", null=True, blank=True)
    withdrawn_reason = models.TextField("withdrawal reason", blank=True)

    class Meta:
        ordering = ["-decided_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(release__isnull=False, change__isnull=True)
                | models.Q(release__isnull=True, change__isnull=False),
                name="releases_approval_one_subject",
            ),
            models.UniqueConstraint(
                fields=["approver", "release"],
                condition=models.Q(withdrawn_at__isnull=True, release__isnull=False),
                name="releases_approval_once_per_release",
            ),
            models.UniqueConstraint(
                fields=["approver", "change"],
                condition=models.Q(withdrawn_at__isnull=True, change__isnull=False),
                name="releases_approval_once_per_change",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} by {self.approver} on {self.subject}"

    @property
    def subject(self):
        return self.release if self.release_id else self.change

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None
