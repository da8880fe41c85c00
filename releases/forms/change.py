"""A change record in the browser: raised as normal, emergency, or standard from a pre-approved template."""

from django import forms
from django.utils import timezone

from cmdb.models import ConfigurationItem, Service
from releases.choices import RELEASE_PRE_DEPLOYMENT_STATES, ChangeType
from releases.forms.release import DATETIME_WIDGET
from releases.models import ChangeRecord, ChangeTemplate, Release
from releases.permissions import ADD_CHANGE
from releases.services.change import CHANGE_EDITABLE_FIELDS


def pre_approved_templates():
    return ChangeTemplate.objects.filter(active=True, approved_at__isnull=False).prefetch_related("services")


class ChangeForm(forms.ModelForm):
    """What the requester asks for. A standard change takes its template's services and risk (the service
    fills them in); the others name their own.
    """

    change_type = forms.ChoiceField(label="Type", choices=ChangeType.choices, widget=forms.RadioSelect)
    template = forms.ModelChoiceField(
        pre_approved_templates().order_by("name"),
        required=False,
        label="Standard change template",
        help_text="Standard changes only: the template's pre-approval stands for the CAB's; "
        "its services and risk apply.",
    )
    title = forms.CharField(
        label="Title", max_length=200, required=False, help_text="Standard change: empty takes the template's name."
    )
    services = forms.ModelMultipleChoiceField(
        Service.objects.order_by("name"), widget=forms.CheckboxSelectMultiple, label="Services", required=False
    )
    configuration_items = forms.ModelMultipleChoiceField(
        ConfigurationItem.objects.select_related("environment").order_by("name", "environment__name"),
        label="CIs it changes",
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )
    release = forms.ModelChoiceField(
        Release.objects.filter(state__in=RELEASE_PRE_DEPLOYMENT_STATES).order_by("name", "version"),
        required=False,
        label="Release it carries",
        help_text="Optional. Its services apply when none are chosen; an emergency release needs an emergency change.",
    )

    class Meta:
        model = ChangeRecord
        fields = (
            "change_type",
            "template",
            "title",
            "description",
            "risk",
            "impact",
            "planned_start",
            "planned_end",
            "services",
            "configuration_items",
            "release",
        )
        labels = {"planned_start": "Planned start (UTC)", "planned_end": "Planned end (UTC)"}
        help_texts = {"planned_end": "Exclusive: the change is over at this moment."}
        widgets = {
            "planned_start": DATETIME_WIDGET,
            "planned_end": DATETIME_WIDGET,
            "description": forms.Textarea(attrs={"rows": 3}),
            "impact": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if user is not None and not user.has_perm(ADD_CHANGE):  # Build/CI Engineers: standard changes only
            self.fields["change_type"].choices = [(ChangeType.STANDARD, ChangeType.STANDARD.label)]
            self.fields["change_type"].initial = ChangeType.STANDARD
        self.fields["risk"].required = False
        if self.instance.pk:  # the template and the release are chosen when the change is raised
            for name in ("template", "release"):
                del self.fields[name]
            if self.instance.change_type == ChangeType.STANDARD:
                self.fields["change_type"].disabled = True
            else:
                self.fields["change_type"].choices = [
                    choice for choice in ChangeType.choices if choice[0] != ChangeType.STANDARD
                ]

    def clean(self):
        cleaned = super().clean()
        change_type = cleaned.get("change_type")
        if change_type == ChangeType.STANDARD and not self.instance.pk and not cleaned.get("template"):
            self.add_error("template", "Choose the pre-approved template this standard change comes from.")
        if change_type and change_type != ChangeType.STANDARD and not cleaned.get("title", "").strip():
            self.add_error("title", "Give the change a title.")
        start = cleaned.get("planned_start")
        if start and not self.instance.pk and start < timezone.now():
            self.add_error("planned_start", "The planned start is in the past.")
        return cleaned

    def create_data(self) -> dict:
        """The arguments ``change_create`` takes."""
        data = dict(self.cleaned_data)
        if data["change_type"] != ChangeType.STANDARD:
            data["template"] = None
        return data

    def changed_data_for_update(self) -> dict:
        """The edited fields ``change_update`` applies."""
        return {name: self.cleaned_data[name] for name in self.changed_data if name in CHANGE_EDITABLE_FIELDS}
