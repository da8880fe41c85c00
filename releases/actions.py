"""Who may take which action on a release, a package or a change, and from which states: one rule table per
record (``rdm_site.actions``). The services enforce these tables and ``<entity>_available_actions`` reports
them, so the buttons and the API's ``actions`` list what the services would accept.

Only role, ownership and segregation of duties are rules here; conditions on other records (the checklist,
windows, the quorum, lead times) stay in the services and are explained when the action is taken.
"""

from django.contrib.auth.models import User

from rdm_site.actions import ActionRule, actions_available
from releases import permissions as perms
from releases.choices import (
    CHANGE_EDITABLE_STATES,
    CHANGE_OPEN_STATES,
    RELEASE_PRE_DEPLOYMENT_STATES,
    REVIEW_OPEN_STATES,
    ChangeTransition,
    ChangeType,
    PackageState,
    PackageTransition,
    ReleaseTransition,
    ReviewTransition,
)
from releases.models import ChangeRecord, PostImplementationReview, Release, ReleasePackage
from releases.selectors import release_current_package, release_standard_preapproval


def _holds(permission: str):
    def who(record, actor: User | None, attempt: str):
        return [perms.permission_problem(actor, permission, attempt)]

    return who


def _holds_for_own_services(permission: str, any_permission: str):
    """Service Owners act for their own services only; ``any_permission`` lifts that limit."""

    def who(release: Release, actor: User | None, attempt: str):
        problem = perms.permission_problem(actor, permission, attempt)
        if problem:
            return [problem]
        return [perms.ownership_problem(actor, release.services.select_related("owner"), any_permission, attempt)]

    return who


# --- release ---------------------------------------------------------------------------------------


def _release_decider(release: Release, actor: User | None, attempt: str):
    """Who may decide on a release plan: the permission, a role the policy lists, ownership for Service
    Owners, and segregation of duties (not its manager, requester, or the builder of its package).
    """
    problem = perms.permission_problem(actor, perms.APPROVE_RELEASE, attempt)
    if problem:
        return [problem]
    package = release_current_package(release)
    return [
        perms.role_problem(actor, release.policy.approver_roles, attempt),
        perms.ownership_problem(actor, release.services.all(), perms.APPROVE_ANY_RELEASE, attempt),
        *perms.sod_problems(
            actor,
            attempt,
            manages=release.release_manager,
            requested=release.requested_by,
            built=package.built_by if package else None,
        ),
    ]


def _release_deployer(release: Release, actor: User | None, attempt: str):
    """Deployment Managers deploy any release; Build/CI Engineers deploy continuously, under standard
    changes only.
    """
    problem = perms.permission_problem(actor, perms.DEPLOY_RELEASE, attempt)
    if problem or actor is None or actor.has_perm(perms.IMPLEMENT_CHANGE):
        return [problem]
    if release_standard_preapproval(release) is None:
        return [f"{actor.get_username()} may not {attempt}: Build/CI Engineers deploy under standard changes only."]
    return []


_ELS = _holds_for_own_services(perms.MANAGE_ELS, perms.MANAGE_ANY_ELS)

RELEASE_ACTIONS: dict[str, ActionRule] = {
    "update": ActionRule(
        _holds(perms.CHANGE_RELEASE), "edit release {record}", states=tuple(RELEASE_PRE_DEPLOYMENT_STATES)
    ),
    ReleaseTransition.PLAN: ActionRule(_holds(perms.CHANGE_RELEASE), "plan release {record}", ReleaseTransition.PLAN),
    ReleaseTransition.SUBMIT: ActionRule(
        _holds(perms.SUBMIT_RELEASE), "submit release {record}", ReleaseTransition.SUBMIT
    ),
    ReleaseTransition.APPROVE: ActionRule(_release_decider, "approve release {record}", ReleaseTransition.APPROVE),
    ReleaseTransition.REJECT: ActionRule(_release_decider, "reject release {record}", ReleaseTransition.REJECT),
    ReleaseTransition.MARK_READY: ActionRule(
        _holds(perms.SUBMIT_RELEASE), "mark release {record} ready", ReleaseTransition.MARK_READY
    ),
    ReleaseTransition.REPLAN: ActionRule(
        _holds(perms.CHANGE_RELEASE), "re-plan release {record}", ReleaseTransition.REPLAN
    ),
    ReleaseTransition.CANCEL: ActionRule(
        _holds(perms.CANCEL_RELEASE), "cancel release {record}", ReleaseTransition.CANCEL
    ),
    ReleaseTransition.START_DEPLOYING: ActionRule(
        _release_deployer, "deploy release {record}", ReleaseTransition.START_DEPLOYING
    ),
    ReleaseTransition.MARK_DEPLOYED: ActionRule(
        _holds(perms.DEPLOY_RELEASE), "record that release {record} deployed", ReleaseTransition.MARK_DEPLOYED
    ),
    ReleaseTransition.MARK_FAILED: ActionRule(
        _holds(perms.DEPLOY_RELEASE), "record that release {record} failed", ReleaseTransition.MARK_FAILED
    ),
    ReleaseTransition.MARK_ROLLED_BACK: ActionRule(
        _holds(perms.DEPLOY_RELEASE), "record that release {record} rolled back", ReleaseTransition.MARK_ROLLED_BACK
    ),
    ReleaseTransition.START_ELS: ActionRule(
        _ELS, "start early life support of release {record}", ReleaseTransition.START_ELS
    ),
    ReleaseTransition.START_REVIEW: ActionRule(
        _ELS, "exit early life support of release {record}", ReleaseTransition.START_REVIEW
    ),
    ReleaseTransition.CLOSE: ActionRule(
        _holds_for_own_services(perms.CLOSE_RELEASE, perms.CLOSE_ANY_RELEASE),
        "close release {record}",
        ReleaseTransition.CLOSE,
    ),
}


def release_available_actions(release: Release, actor: User | None) -> list[str]:
    """What ``actor`` may do with the release now (the services accept these, conditions permitting)."""
    return actions_available(RELEASE_ACTIONS, release, actor)


# --- package ---------------------------------------------------------------------------------------


def _package_validator(package: ReleasePackage, actor: User | None, attempt: str):
    """Release or Deployment Managers vouch for a package, never its builder."""
    problem = perms.permission_problem(actor, perms.VALIDATE_PACKAGE, attempt)
    return [problem] if problem else perms.sod_problems(actor, attempt, built=package.built_by)


PACKAGE_ACTIONS: dict[str, ActionRule] = {
    PackageTransition.MARK_BUILT: ActionRule(
        _holds(perms.REGISTER_PACKAGE), "mark package {record} built", PackageTransition.MARK_BUILT
    ),
    PackageTransition.VALIDATE: ActionRule(_package_validator, "validate package {record}", PackageTransition.VALIDATE),
    PackageTransition.REJECT: ActionRule(_package_validator, "reject package {record}", PackageTransition.REJECT),
    "record_test_run": ActionRule(
        _holds(perms.REGISTER_PACKAGE),
        "record test results for {record}",
        states=tuple(state for state in PackageState.values if state != PackageState.SUPERSEDED),
    ),
}


def package_available_actions(package: ReleasePackage, actor: User | None) -> list[str]:
    """What ``actor`` may do with the package now."""
    return actions_available(PACKAGE_ACTIONS, package, actor)


# --- change ----------------------------------------------------------------------------------------


def _change_requester(change: ChangeRecord, actor: User | None, attempt: str):
    """Who raises a change may edit and submit it: Build/CI Engineers standard changes only."""
    if change.change_type == ChangeType.STANDARD:
        return [perms.any_permission_problem(actor, [perms.ADD_CHANGE, perms.CREATE_STANDARD_CHANGE], attempt)]
    return [perms.permission_problem(actor, perms.ADD_CHANGE, attempt)]


def _change_submitter(change: ChangeRecord, actor: User | None, attempt: str):
    return [perms.any_permission_problem(actor, [perms.ADD_CHANGE, perms.CREATE_STANDARD_CHANGE], attempt)]


def _change_decider(change: ChangeRecord, actor: User | None, attempt: str):
    """The CAB decides on normal changes, the emergency CAB on emergency ones; never the requester."""
    emergency = change.change_type == ChangeType.EMERGENCY
    problem = perms.permission_problem(
        actor, perms.APPROVE_EMERGENCY_CHANGE if emergency else perms.APPROVE_CHANGE, attempt
    )
    return [problem] if problem else perms.sod_problems(actor, attempt, requested=change.requested_by)


def _change_implementer(change: ChangeRecord, actor: User | None, attempt: str):
    """Deployment Managers carry out any change; Build/CI Engineers standard changes only."""
    if change.change_type == ChangeType.STANDARD:
        return [perms.any_permission_problem(actor, [perms.IMPLEMENT_CHANGE, perms.IMPLEMENT_STANDARD_CHANGE], attempt)]
    return [perms.permission_problem(actor, perms.IMPLEMENT_CHANGE, attempt)]


def _freeze_overrider(change: ChangeRecord, actor: User | None, attempt: str):
    problem = perms.permission_problem(actor, perms.OVERRIDE_FREEZE, attempt)
    return [problem] if problem else perms.sod_problems(actor, attempt, requested=change.requested_by)


def _change_rule(who, verb: str, transition: str) -> ActionRule:
    return ActionRule(who, f"{verb} change {{record.number}}", transition)


CHANGE_ACTIONS: dict[str, ActionRule] = {
    "update": ActionRule(_change_requester, "edit change {record.number}", states=CHANGE_EDITABLE_STATES),
    ChangeTransition.SUBMIT: _change_rule(_change_submitter, "submit", ChangeTransition.SUBMIT),
    ChangeTransition.ASSESS: _change_rule(_holds(perms.ASSESS_CHANGE), "assess", ChangeTransition.ASSESS),
    ChangeTransition.APPROVE: _change_rule(_change_decider, "approve", ChangeTransition.APPROVE),
    ChangeTransition.REJECT: _change_rule(_change_decider, "reject", ChangeTransition.REJECT),
    ChangeTransition.SCHEDULE: _change_rule(_change_implementer, "schedule", ChangeTransition.SCHEDULE),
    ChangeTransition.START: _change_rule(_change_implementer, "start", ChangeTransition.START),
    ChangeTransition.MARK_IMPLEMENTED: _change_rule(_change_implementer, "complete", ChangeTransition.MARK_IMPLEMENTED),
    ChangeTransition.MARK_FAILED: _change_rule(_change_implementer, "complete", ChangeTransition.MARK_FAILED),
    ChangeTransition.MARK_BACKED_OUT: _change_rule(_change_implementer, "complete", ChangeTransition.MARK_BACKED_OUT),
    ChangeTransition.REVIEW: _change_rule(_holds(perms.REVIEW_CHANGE), "review", ChangeTransition.REVIEW),
    ChangeTransition.CLOSE: _change_rule(_holds(perms.REVIEW_CHANGE), "close", ChangeTransition.CLOSE),
    "override_freeze": ActionRule(
        _freeze_overrider, "override a freeze for change {record.number}", states=CHANGE_OPEN_STATES
    ),
}


def change_available_actions(change: ChangeRecord, actor: User | None) -> list[str]:
    """What ``actor`` may do with the change now."""
    return actions_available(CHANGE_ACTIONS, change, actor)


# --- post-implementation review ---------------------------------------------------------------------


def _review_writer(review: PostImplementationReview, actor: User | None, attempt: str):
    """The owner of one of the release's services writes and submits its review."""
    problem = perms.permission_problem(actor, perms.WRITE_REVIEW, attempt)
    if problem:
        return [problem]
    return [perms.ownership_problem(actor, review.release.services.all(), perms.WRITE_ANY_REVIEW, attempt)]


def _review_decider(review: PostImplementationReview, actor: User | None, attempt: str):
    """A Release Manager or a Service Owner accepts or returns a review, never the one who submitted it."""
    problem = perms.permission_problem(actor, perms.DECIDE_REVIEW, attempt)
    return [problem] if problem else perms.sod_problems(actor, attempt, submitted=review.submitted_by)


REVIEW_ACTIONS: dict[str, ActionRule] = {
    "update": ActionRule(_review_writer, "edit the review of {record.release}", states=(*REVIEW_OPEN_STATES,)),
    ReviewTransition.SUBMIT: ActionRule(
        _review_writer, "submit the review of {record.release}", states=(*REVIEW_OPEN_STATES,)
    ),
    ReviewTransition.ACCEPT: ActionRule(
        _review_decider, "accept the review of {record.release}", ReviewTransition.ACCEPT
    ),
    ReviewTransition.RETURN: ActionRule(
        _review_decider, "return the review of {record.release}", ReviewTransition.RETURN
    ),
}


def review_available_actions(review: PostImplementationReview, actor: User | None) -> list[str]:
    """What ``actor`` may do with the review now."""
    return actions_available(REVIEW_ACTIONS, review, actor)
