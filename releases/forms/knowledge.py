"""Knowledge articles in the browser: the search box, and the article's form."""

from django import forms

from cmdb.models import ConfigurationItem, Service
from releases.models import KnowledgeArticle, Release, ReleasePackage
from releases.services.evidence import KNOWLEDGE_EDITABLE_FIELDS


class KnowledgeSearchForm(forms.Form):
    q = forms.CharField(
        label="Search the knowledge base",
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": 'Words, "a phrase", or, -excluded'}),
    )
    service = forms.ModelChoiceField(Service.objects.order_by("name"), required=False, empty_label="Every service")


class KnowledgeArticleForm(forms.ModelForm):
    """A runbook, rollback steps or a lesson, for a service (and the package, CIs and release it concerns)."""

    service = forms.ModelChoiceField(Service.objects.order_by("name"), label="Service")
    release = forms.ModelChoiceField(
        Release.objects.order_by("name", "version"), required=False, label="Release it came from"
    )
    package = forms.ModelChoiceField(
        ReleasePackage.objects.select_related("release").order_by("release__name", "version"),
        required=False,
        label="Package it is for",
    )
    configuration_items = forms.ModelMultipleChoiceField(
        ConfigurationItem.objects.select_related("environment").order_by("name", "environment__name"),
        required=False,
        label="CIs it concerns",
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )

    class Meta:
        model = KnowledgeArticle
        fields = ("title", "kind", "service", "release", "package", "configuration_items", "body")
        help_texts = {"body": "Markdown: headings, lists, links and code; HTML is shown as text."}
        widgets = {"body": forms.Textarea(attrs={"rows": 12})}

    def create_data(self) -> dict:
        """The arguments ``knowledge_article_create`` takes."""
        return {name: self.cleaned_data[name] for name in self.Meta.fields}

    def changed_article(self) -> dict:
        """The edited fields ``knowledge_article_update`` applies."""
        return {name: self.cleaned_data[name] for name in self.changed_data if name in KNOWLEDGE_EDITABLE_FIELDS}
