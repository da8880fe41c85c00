"""Template helpers every page uses: badges, form fields in Tabler's markup, safe Markdown."""

from django import forms, template
from django.utils.safestring import mark_safe
from markdown_it import MarkdownIt

from rdm_site.badges import badge_html, field_badge
from rdm_site.tables import table_body_html

register = template.Library()

# CommonMark without raw HTML: what users write is shown as text, and links with unsafe schemes
# (javascript:, data:…) are not made links.
_MARKDOWN = MarkdownIt("js-default")


@register.simple_tag
def badge(record, field: str = "state"):
    """``{% badge release %}`` or ``{% badge change "risk" %}``: the value's text in its colour."""
    return field_badge(record, field)


@register.simple_tag
def colour_badge(text: str, colour: str = "gray"):
    return badge_html(text, colour)


@register.simple_tag(takes_context=True)
def table_body(context, table):
    """``{% table_body table %}``: a django-tables2 table's ``<tbody>``, written in Python (``rdm_site.tables``)."""
    return table_body_html(table, context)


@register.filter
def markdown(text: str):
    """Markdown rendered safely (no raw HTML)."""
    return mark_safe(_MARKDOWN.render(text or ""))  # noqa: S308 - the renderer escapes all HTML in the source


def _widget_class(widget: forms.Widget) -> str:
    if isinstance(widget, forms.CheckboxInput):
        return "form-check-input"
    if isinstance(widget, forms.Select) and not isinstance(widget, forms.SelectMultiple):
        return "form-select"
    if isinstance(widget, forms.CheckboxSelectMultiple | forms.RadioSelect):
        return ""
    return "form-control"


@register.filter
def as_control(field: forms.BoundField):
    """A form field's widget with Tabler's classes, marked invalid when it has errors."""
    classes = [_widget_class(field.field.widget), "is-invalid" if field.errors else ""]
    attrs = {"class": " ".join(name for name in classes if name)}
    if field.errors:
        attrs["aria-describedby"] = f"{field.auto_id}_errors"
    return field.as_widget(attrs=attrs)


@register.filter
def is_checkbox(field: forms.BoundField) -> bool:
    return isinstance(field.field.widget, forms.CheckboxInput)


@register.filter
def object_type(record) -> str:
    """How the audit trail names the record's type ("releases.release")."""
    return record._meta.label_lower
