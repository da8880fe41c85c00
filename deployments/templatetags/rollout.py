"""The rollout grid's step buttons, built in Python: a grid of 1,000 targets renders 1,000 of them, and a template
include per button cost a third of a second. ``may_plan_deployments``: whether a page offers to plan one."""

from django import template
from django.urls import reverse
from django.utils.html import format_html

from deployments.services import may_plan_deployments

register = template.Library()
register.filter("may_plan_deployments", may_plan_deployments)

_BUTTON = (
    '<button type="button" class="rdm-step rdm-state-{state}" data-step="{pk}" data-label="{label}" hx-get="{url}" '
    'hx-target="#step-logs" hx-swap="innerHTML" title="Show its log"><span class="rdm-step-name">{name}{hidden}'
    '</span> <span class="rdm-step-state">{state_label}</span></button>'
)


@register.simple_tag(takes_context=True)
def step_button(context, step, target_name: str = ""):
    """A step of the grid (``selectors.GridStep``): its name and state; a click shows its log. The log's address
    is reversed once per page."""
    key = ("step_logs_url", step.deployment_id)
    if key not in context.render_context:
        context.render_context[key] = reverse("deployments:step_logs", args=[step.deployment_id, 0]).rpartition("/0/")
    head, _, tail = context.render_context[key]
    hidden = format_html('<span class="visually-hidden"> on {}</span>', target_name) if target_name else ""
    return format_html(
        _BUTTON,
        state=step.state,
        pk=step.pk,
        label=f"{step.name} on {target_name}" if target_name else step.name,
        url=f"{head}/{step.pk}/{tail}",
        name=step.name,
        hidden=hidden,
        state_label=step.state_label,
    )
