"""The release plan in the browser: the plan's fields and its units (each with the CIs it changes)."""

from django import forms
from django.contrib.auth.models import User

from cmdb.models import ConfigurationItem, Service
from rdm_site.roles import Role
from releases.choices import UnitKind
from releases.models import Release, ReleasePolicy, ReleaseUnit

# Dates are entered and shown in the site's zone (UTC): the label says so.
DATETIME_WIDGET = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class ReleaseForm(forms.ModelForm):
    """The plan as the release manager writes it; the release type follows from the policy chosen."""

    policy = forms.ModelChoiceField(
        ReleasePolicy.objects.filter(active=True).order_by("name"),
        label="Type and policy",
        help_text="The policy decides the release type, the approvals needed, the gates and the lead time.",
    )
    services = forms.ModelMultipleChoiceField(
        Service.objects.order_by("name"), widget=forms.CheckboxSelectMultiple, label="Services"
    )
    release_manager = forms.ModelChoiceField(
        User.objects.filter(is_active=True, groups__name=Role.RELEASE_MANAGER).distinct().order_by("username"),
        required=False,
        label="Release manager",
        help_text="Empty: you.",
    )

    class Meta:
        model = Release
        fields = (
            "name",
            "version",
            "policy",
            "services",
            "release_manager",
            "planned_start",
            "planned_end",
            "description",
            "release_notes",
        )
        labels = {"planned_start": "Planned start (UTC)", "planned_end": "Planned end (UTC)"}
        help_texts = {"release_notes": "Markdown: headings, lists, links and code; HTML is shown as text."}
        widgets = {
            "planned_start": DATETIME_WIDGET,
            "planned_end": DATETIME_WIDGET,
            "description": forms.Textarea(attrs={"rows": 3}),
            "release_notes": forms.Textarea(attrs={"rows": 8, "class": "font-monospace"}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:  # the policy (and so the type) is chosen once, when the plan is created
            self.fields["policy"].disabled = True
            self.fields["policy"].queryset = ReleasePolicy.objects.all()
            self.fields["release_manager"].required = True
            self.fields["release_manager"].help_text = ""

    def plan_data(self) -> dict:
        """The fields ``release_create`` takes (the type follows from the policy)."""
        data = {name: self.cleaned_data[name] for name in self.Meta.fields}
        data["release_type"] = data["policy"].release_type
        return data

    def changed_plan(self) -> dict:
        """The edited fields ``release_update`` applies."""
        return {name: self.cleaned_data[name] for name in self.changed_data if name != "policy"}


UNIT_FIELDS = ("name", "kind", "version", "configuration_items", "reversible")


class ReleaseUnitForm(forms.Form):
    """One component deployed with the release, and the CIs it changes; ``unit`` names the one it edits."""

    unit = forms.ModelChoiceField(ReleaseUnit.objects.none(), required=False, widget=forms.HiddenInput)
    name = forms.CharField(label="Unit name", max_length=200)
    kind = forms.ChoiceField(label="Kind", choices=UnitKind.choices, initial=UnitKind.APPLICATION_ARTIFACT)
    version = forms.CharField(label="Version", max_length=100, required=False)
    configuration_items = forms.ModelMultipleChoiceField(
        ConfigurationItem.objects.select_related("environment").order_by("name", "environment__name"),
        label="CIs it changes",
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 4}),
    )
    reversible = forms.BooleanField(label="Reversible", required=False, initial=True)

    def __init__(self, *args, release: Release | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if release is not None:  # only a unit of this release may be edited, whatever is posted
            self.fields["unit"].queryset = release.units.all()

    def unit_data(self) -> dict:
        """The unit as ``release_unit_add`` takes it."""
        return {name: self.cleaned_data[name] for name in UNIT_FIELDS}

    def unit_changes(self) -> dict:
        """The edited fields ``release_unit_update`` applies."""
        return {name: self.cleaned_data[name] for name in self.changed_data if name in UNIT_FIELDS}


class BaseUnitFormSet(forms.BaseFormSet):
    """The units' rows of the plan's form: a release's units first (each may be changed or removed), then
    blank rows for new ones.
    """

    def add_fields(self, form, index):
        super().add_fields(form, index)
        if "DELETE" in form.fields:  # a release's own units only: a blank row is simply left empty
            form.fields["DELETE"].label = "Remove this unit"

    def clean(self):
        super().clean()
        seen = set()
        for form in self.forms:
            kept = form.has_changed() and form.is_valid() and not self._should_delete_form(form)
            name = form.cleaned_data.get("name") if kept else None
            if name in seen:
                form.add_error("name", f"Another unit is already named {name!r}.")
            elif name:
                seen.add(name)

    def _filled(self) -> list[ReleaseUnitForm]:
        """The rows filled in or changed (blank rows are ignored)."""
        return [form for form in self.forms if form.has_changed() and form.cleaned_data]

    def units(self) -> list[dict]:
        """The new units, as ``release_create`` takes them."""
        return [form.unit_data() for form in self._filled()]

    def unit_edits(self) -> dict:
        """The units removed, changed and added, as ``release_update_with_units`` takes them."""
        edits = {"units_removed": [], "units_changed": [], "units_added": []}
        for form in self._filled():
            unit = form.cleaned_data.get("unit")
            if self._should_delete_form(form):
                edits["units_removed"] += [unit] if unit else []
            elif unit is None:
                edits["units_added"].append(form.unit_data())
            else:
                edits["units_changed"].append((unit, form.unit_changes()))
        return edits


_ReleaseUnitFormSet = forms.formset_factory(
    ReleaseUnitForm, formset=BaseUnitFormSet, extra=3, max_num=20, can_delete=True, can_delete_extra=False
)


def release_unit_formset(data=None, *, release: Release | None = None) -> BaseUnitFormSet:
    """The units' rows for a new plan (``release`` None) or for editing the units of ``release``."""
    units = list(release.units.prefetch_related("configuration_items")) if release else []
    initial = [
        {
            "unit": unit.pk,
            "name": unit.name,
            "kind": unit.kind,
            "version": unit.version,
            "configuration_items": [ci.pk for ci in unit.configuration_items.all()],
            "reversible": unit.reversible,
        }
        for unit in units
    ]
    return _ReleaseUnitFormSet(data, prefix="units", initial=initial, form_kwargs={"release": release})
