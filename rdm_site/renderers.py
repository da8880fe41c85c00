"""The form renderer of every page: Django's widget templates, except selects, written in Python with the same
markup. A list's filter form lists every service and every user as options; through Django's templates each option
cost an include of two templates (about 40 % of a list page's time at 200 services and 185 users).
"""

from django.forms.renderers import DjangoTemplates
from django.utils.formats import localize
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe

SELECT_TEMPLATE = "django/forms/widgets/select.html"
OPTION_TEMPLATE = "django/forms/widgets/select_option.html"


def attributes_html(attrs: dict) -> str:
    """Attributes as Django's ``attrs.html`` writes them: a True value as a bare name, a False one left out."""
    return "".join(
        f" {conditional_escape(name)}"
        if value is True
        else f' {conditional_escape(name)}="{conditional_escape(value)}"'
        for name, value in attrs.items()
        if value is not False
    )


def select_html(widget: dict) -> str | None:
    """A select widget's context (``Select.get_context()["widget"]``) as ``select.html`` renders it; None when an
    option has a template of its own."""
    parts = [f'<select name="{conditional_escape(widget["name"])}"{attributes_html(widget["attrs"])}>']
    for group_name, options, _ in widget["optgroups"]:
        if group_name:
            parts.append(f'\n  <optgroup label="{conditional_escape(group_name)}">')
        for option in options:
            if option["template_name"] != OPTION_TEMPLATE:
                return None
            parts.append(
                f'\n  <option value="{conditional_escape(option["value"])}"{attributes_html(option["attrs"])}>'
                f"{conditional_escape(localize(option['label']))}</option>\n"  # the option template ends a line
            )
        if group_name:
            parts.append("\n  </optgroup>")
    parts.append("\n</select>")
    return mark_safe("".join(parts))  # noqa: S308 - every name, value and label above is escaped


class FormRenderer(DjangoTemplates):
    """Django's template renderer, with selects written in Python (``FORM_RENDERER``)."""

    def render(self, template_name, context, request=None):
        if template_name == SELECT_TEMPLATE:
            html = select_html(context["widget"])
            if html is not None:
                return html
        return super().render(template_name, context, request)
