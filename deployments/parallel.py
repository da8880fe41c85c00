"""Parallel (blue/green) deployments: the plan's two sets of targets, and which of them the CMDB says is live.

The phase plan of a parallel deployment names the sets and the cutover::

    {"set_by": "ring",              # or "group", or "attribute:<CI attribute>"; default "ring"
     "live": "blue", "parallel": "green",
     "cutover": {"url": "...", "rollback_url": "...", ...},   # http_call parameters; rollback_url cuts back
     "bake_seconds": 60}

It runs as two waves (``deployments.planning.parallel_waves``): the process's steps on the parallel set, then
its health gate after the bake; then one cutover step (an ``http_call`` to the load balancer, DNS or service
mesh) and the health gate again, now under traffic. The live set is never touched. Rolling back means cutting
back (the cutover's ``rollback_url``), never redeploying either set: the parallel set stays as it is for a
look, the old set stays until a later step or a person decommissions it.

With ``"cutover_only": true`` the parallel set already runs the version (the CMDB says so, or the plan is
refused): only the cutover wave runs. Rolling back a parallel deployment after its success
(``deployments.redeploy``) plans that way: the sets swap roles (``switched_back_plan``) and traffic goes back
to the standby set, by a cutover-only deployment when that set still runs the restored version, otherwise by
deploying it there first; the set that ran the replaced version is never touched.

The CMDB records which set serves as an attribute of each target CI: ``traffic`` is ``live`` or ``standby``.
A success writes it (through ``cmdb.services.ci_update``, so the trail names the deployment); a plan whose
parallel set the CMDB says is live is refused, since deploying there would touch what serves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deployments.models import Deployment, Target

SET_BY_ATTRIBUTE = "attribute:"
TRAFFIC = "traffic"  # the CI attribute naming whether the CI's set serves
LIVE, STANDBY = "live", "standby"
PLAN_KEYS = {"set_by", "live", "parallel", "cutover", "cutover_only"}
# A cutover's call and its rollback (the cut-back) trade places when the sets swap roles.
CUT_BACK_SWAP = {"url": "rollback_url", "method": "rollback_method", "body": "rollback_body"}
CUT_BACK_SWAP |= {cut_back: call for call, cut_back in CUT_BACK_SWAP.items()}


def parallel_plan_problems(phase_plan: dict[str, Any]) -> list[str]:
    """What is wrong with the parallel part of a phase plan (the cutover's parameters are checked by
    ``http_call`` when the plan is built)."""
    problems = []
    set_by = phase_plan.get("set_by", "ring")
    if set_by not in ("ring", "group") and not (
        isinstance(set_by, str) and set_by.startswith(SET_BY_ATTRIBUTE) and set_by.removeprefix(SET_BY_ATTRIBUTE)
    ):
        problems.append('set_by must be "ring", "group" or "attribute:<CI attribute>"')
    labels = [phase_plan.get(key) for key in ("live", "parallel")]
    for key, label in zip(("live", "parallel"), labels, strict=True):
        if not isinstance(label, str) or not label:
            problems.append(f"{key} must name a set of targets (a {_set_by_name(set_by)} label)")
    if labels[0] and labels[0] == labels[1]:
        problems.append("the live and the parallel sets must differ")
    cutover = phase_plan.get("cutover")
    if not isinstance(cutover, dict) or not cutover.get("url"):
        problems.append("cutover must give the url of the call that switches traffic (http_call parameters)")
    elif not cutover.get("rollback_url"):
        problems.append("cutover must give the rollback_url that cuts back: it is the rollback")
    if not isinstance(phase_plan.get("cutover_only", False), bool):
        problems.append("cutover_only must be true or false")
    return problems


def set_label(target: Target, set_by: str) -> str:
    """The set a target belongs to: its ring, its group, or the value of a CI attribute."""
    if set_by.startswith(SET_BY_ATTRIBUTE):
        value = (target.ci.attributes or {}).get(set_by.removeprefix(SET_BY_ATTRIBUTE), "")
        return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return target.group if set_by == "group" else target.ring


def set_members(targets: Sequence[Target], phase_plan: dict[str, Any], which: str) -> list[Target]:
    """The targets of the ``live`` or ``parallel`` set named by the plan."""
    set_by = phase_plan.get("set_by", "ring")
    return [target for target in targets if set_label(target, set_by) == phase_plan[which]]


def serving_problems(parallel_set: Sequence[Target], phase_plan: dict[str, Any]) -> list[str]:
    """Why the parallel set cannot be deployed to: it is empty, or the CMDB says it serves traffic."""
    name = f"the parallel set {phase_plan['parallel']!r} (by {_set_by_name(phase_plan.get('set_by', 'ring'))})"
    if not parallel_set:
        return [f"{name} has no enabled target"]
    serving = sorted(t.ci.name for t in parallel_set if (t.ci.attributes or {}).get(TRAFFIC) == LIVE)
    if serving:
        return [f"{name} is live in the CMDB ({', '.join(serving[:3])}): deploy to the set that does not serve"]
    return []


def cutover_only_problems(parallel_set: Sequence[Target], version: str) -> list[str]:
    """Why the parallel set cannot take traffic without being deployed first: a CI of it runs another version."""
    elsewhere = sorted(
        f"{t.ci.name} runs {t.ci.version or 'no recorded version'}" for t in parallel_set if t.ci.version != version
    )
    if elsewhere:
        return [f"cutover_only needs the parallel set to run {version} ({', '.join(elsewhere[:3])})"]
    return []


def rollback_scope(started):
    """The started steps a rollback undoes: for a parallel deployment only the cutover (cutting back), the one
    deploy step that no step template made."""
    return started.filter(template__isnull=True)


def switched_back_plan(phase_plan: dict[str, Any], targets: Sequence[Target], version: str) -> dict[str, Any]:
    """The plan that takes traffic back from a parallel deployment's set to the other one, where ``version``
    is to run: the sets swap roles, the cutover and its cut-back trade places, and when every CI of the set
    taking traffic back runs ``version`` already, only the cutover runs."""
    switched = {CUT_BACK_SWAP.get(key, key): value for key, value in phase_plan["cutover"].items()}
    plan = {**phase_plan, "live": phase_plan["parallel"], "parallel": phase_plan["live"], "cutover": switched}
    standby = set_members(targets, plan, "parallel")
    plan["cutover_only"] = bool(standby) and not cutover_only_problems(standby, version)
    return plan


def live_set_record(deployment: Deployment, targets: Sequence[Target]) -> None:
    """After a verified cutover the parallel set is live and the old set on standby: written on each CI of
    ``targets`` (the deployment's service in its environment)."""
    from cmdb.services import ci_update

    plan = deployment.phase_plan
    reason = f"cut over to {plan['parallel']} by deployment #{deployment.pk}"
    for which, traffic in (("live", STANDBY), ("parallel", LIVE)):
        for target in set_members(targets, plan, which):
            attributes = target.ci.attributes or {}
            if attributes.get(TRAFFIC) != traffic:
                ci_update(
                    ci=target.ci, actor=None, data={"attributes": {**attributes, TRAFFIC: traffic}}, reason=reason
                )


def _set_by_name(set_by: Any) -> str:
    if isinstance(set_by, str) and set_by.startswith(SET_BY_ATTRIBUTE):
        return f"CI attribute {set_by.removeprefix(SET_BY_ATTRIBUTE)}"
    return str(set_by)
