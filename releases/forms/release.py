"""The release plan in the browser: the plan's fields and its units (each with the CIs it changes)."""

from django import forms
from django.contrib.auth.models import User

from cmdb.models import ConfigurationItem, Service
from rdm_site.roles import Role
from releases.choices import UnitKind
from releases.models import Release, ReleasePolicy

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


class ReleaseUnitForm(forms.Form):
    """One component deployed with the release, and the CIs it changes."""

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

    def unit_data(self) -> dict:
        return dict(self.cleaned_data)


class BaseUnitFormSet(forms.BaseFormSet):
    def clean(self):
        super().clean()
        seen = set()
        for form in self.forms:
            name = form.cleaned_data.get("name") if form.has_changed() and form.is_valid() else None
            if name in seen:
                form.add_error("name", f"Another unit is already named {name!r}.")
            elif name:
                seen.add(name)

    def units(self) -> list[dict]:
        """The units filled in (blank rows are ignored)."""
        return [form.unit_data() for form in self.forms if form.has_changed() and form.cleaned_data]


ReleaseUnitFormSet = forms.formset_factory(ReleaseUnitForm, formset=BaseUnitFormSet, extra=3, max_num=20)
