"""The CMDB's forms in the browser: a service's edit, a baseline to take, two baselines to compare, a file
of CIs to import. Each hands its cleaned input to the service the API calls.
"""

from pathlib import PurePath

from django import forms
from django.contrib.auth.models import User
from rest_framework.exceptions import ParseError

from cmdb.api.parsers import IMPORT_MAX_BYTES, checked_import_text
from cmdb.choices import ImportFormat
from cmdb.models import Baseline, Environment, Service
from cmdb.selectors import baseline_list
from cmdb.services import SERVICE_FIELDS


class ServiceForm(forms.ModelForm):
    """A service's fields as ``service_update`` edits them."""

    stakeholders = forms.ModelMultipleChoiceField(
        User.objects.filter(is_active=True).order_by("username"),
        required=False,
        label="Stakeholders",
        help_text="Told about the service's releases.",
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )

    class Meta:
        model = Service
        fields = SERVICE_FIELDS
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = User.objects.filter(is_active=True).order_by("username")

    def update_data(self) -> dict:
        """The edited values for ``service_update`` (which records only those that differ)."""
        return {name: self.cleaned_data[name] for name in SERVICE_FIELDS}


class BaselineTakeForm(forms.Form):
    """A baseline of a service's CIs or of an environment's, as ``baseline_take`` takes it."""

    name = forms.CharField(label="Name", max_length=Baseline._meta.get_field("name").max_length)
    service = forms.ModelChoiceField(
        Service.objects.order_by("name"), required=False, label="Service", help_text="Snapshot this service's CIs…"
    )
    environment = forms.ModelChoiceField(
        Environment.objects.order_by("promotion_order"),
        required=False,
        label="Environment",
        help_text="…or every CI of this environment (choose one of the two).",
    )
    reason = forms.CharField(label="Reason", required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def clean(self):
        cleaned = super().clean()
        if bool(cleaned.get("service")) == bool(cleaned.get("environment")):
            raise forms.ValidationError("Choose either a service or an environment.")
        return cleaned

    def take_data(self) -> dict:
        scope = "service" if self.cleaned_data["service"] else "environment"
        return {
            "name": self.cleaned_data["name"],
            "reason": self.cleaned_data["reason"],
            scope: self.cleaned_data[scope],
        }


class BaselineChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, baseline):
        return f"{baseline.name} (taken {baseline.taken_at:%Y-%m-%d %H:%M} UTC)"


class BaselineDiffForm(forms.Form):
    before = BaselineChoiceField(baseline_list(), label="Earlier baseline")
    after = BaselineChoiceField(baseline_list(), label="Later baseline")


class CiImportForm(forms.Form):
    """A CSV or JSON file of CIs, read as the API reads an uploaded one: its text and format."""

    file = forms.FileField(
        label="File (.csv or .json)",
        help_text=f"UTF-8 text, at most {IMPORT_MAX_BYTES // (1024 * 1024)} MB.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.json,text/csv,application/json"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        suffix = PurePath(upload.name or "").suffix.lower().lstrip(".")
        if suffix not in ImportFormat.values:
            raise forms.ValidationError(f"Name the file .csv or .json (it is “{upload.name}”).")
        if upload.size > IMPORT_MAX_BYTES:
            raise forms.ValidationError(
                f"The file is too large: {upload.size:,} bytes, at most {IMPORT_MAX_BYTES:,}. Split it."
            )
        try:
            self.source = checked_import_text(upload.read(), ImportFormat(suffix))
        except ParseError as error:
            raise forms.ValidationError(str(error.detail)) from None
        self.file_format = ImportFormat(suffix)
        return upload
