"""Selects written in Python (``rdm_site.renderers``): the same markup as Django's widget templates, whatever the
choices, groups, selection, attributes and text that needs escaping; any other widget still goes through its
template."""

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates, get_default_renderer

from cmdb.models import Service
from rdm_site.renderers import FormRenderer
from tests.cmdb.factories import ServiceFactory

CHOICES = [
    ("", "Any"),
    ("a", "Plain"),
    ("b<", 'Needs <escaping> & "quotes"'),
    ("Group & co", [("g1", "In a group"), ("g2", "Also <there>")]),
    (3, 42),
]


def _both(widget: forms.Widget, name: str, value, attrs=None) -> tuple[str, str]:
    """The widget rendered by Django's templates, then by ours."""
    return (
        widget.render(name, value, attrs, renderer=DjangoTemplates()),
        widget.render(name, value, attrs, renderer=FormRenderer()),
    )


@pytest.mark.parametrize(
    ("widget", "value", "attrs"),
    [
        (forms.Select(choices=CHOICES), "b<", {"id": "id_pick", "class": "form-select"}),
        (forms.Select(choices=CHOICES), None, {"required": True, "disabled": False, "data-x": 'a"b'}),
        (forms.SelectMultiple(choices=CHOICES), ["a", "g2", "3"], {"aria-describedby": "id_pick_errors"}),
        (forms.NullBooleanSelect(), "true", {"class": "form-select"}),
    ],
)
def test_a_select_reads_as_djangos_template_writes_it(widget, value, attrs):
    expected, written = _both(widget, "pick", value, attrs)

    assert written == expected
    assert "<optgroup" in written or isinstance(widget, forms.NullBooleanSelect)


@pytest.mark.django_db
def test_a_choice_of_records_reads_as_djangos_template_writes_it():
    services = [ServiceFactory(name="Shop & <Checkout>"), ServiceFactory(name="Search")]
    field = forms.ModelMultipleChoiceField(queryset=Service.objects.order_by("name"))

    expected, written = _both(field.widget, "services", [services[0].pk], {"id": "id_services"})

    assert written == expected
    assert "Shop &amp; &lt;Checkout&gt;</option>" in written


def test_an_option_with_a_template_of_its_own_is_rendered_by_it():
    widget = forms.Select(choices=CHOICES)
    widget.option_template_name = "django/forms/widgets/input_option.html"

    expected, written = _both(widget, "pick", "a")

    assert written == expected
    assert "<input" in written


def test_every_form_renders_with_it():
    assert isinstance(get_default_renderer(), FormRenderer)
