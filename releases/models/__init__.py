"""Release governance models, one module per concern; import them from here."""

from releases.models.approval import Approval
from releases.models.change import ChangeRecord, ChangeTemplate, FreezeOverride
from releases.models.package import PackageArtifact, ReleasePackage, TestRun
from releases.models.policy import FreezePeriod, ReleasePolicy, ReleaseWindow
from releases.models.release import (
    GateEvidence,
    KnowledgeArticle,
    Release,
    ReleaseBaseline,
    ReleaseUnit,
    RollbackPlan,
)
from releases.models.review import PostImplementationReview, ReviewActionItem

__all__ = [
    "Approval",
    "ChangeRecord",
    "ChangeTemplate",
    "FreezeOverride",
    "FreezePeriod",
    "GateEvidence",
    "KnowledgeArticle",
    "PackageArtifact",
    "PostImplementationReview",
    "Release",
    "ReleaseBaseline",
    "ReleasePackage",
    "ReleasePolicy",
    "ReleaseUnit",
    "ReleaseWindow",
    "ReviewActionItem",
    "RollbackPlan",
    "TestRun",
]
