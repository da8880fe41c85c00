"""The post-implementation review in the browser: what the owner writes, the lessons, and the action items.

Every field may stay empty while the review is a draft: ``review_submit`` says what is missing when it is
submitted. Rows of lessons and action items are added and removed on the page (``static/rdm/formset-rows.js``);
a row left blank is ignored, a row ticked for removal is dropped.
"""

from django import forms
from django.contrib.auth.models import User

from rdm_site.domain import TEXT_MAX_LENGTH
from releases.choices import ObjectivesMet
from releases.models import PostImplementationReview
from releases.review_draft import bullets, review_draft
from releases.services.review import MAX_ACTION_ITEMS

# The owner's fields that start as drafts written from the record.
DRAFTED_FIELDS = ("objectives", "went_well", "went_badly")


class ReviewForm(forms.ModelForm):
    """The owner's answers."""

    objectives_met = forms.ChoiceField(
        label="Were the objectives met?", choices=ObjectivesMet.choices, widget=forms.RadioSelect, required=False
    )

    class Meta:
        model = PostImplementationReview
        fields = ("objectives", "objectives_met", "objectives_note", "went_well", "went_badly")
        labels = {"objectives_note": "How far, and why not fully"}
        help_texts = {
            "objectives": "Pre-filled from the release's description.",
            "went_well": "Drafted from the rollout, the incidents and the checklist: keep what is true, add the rest.",
            "went_badly": "Drafted from the rollout, the incidents and the checklist: keep what is true, add the rest.",
        }
        widgets = {
            "objectives": forms.Textarea(attrs={"rows": 3}),
            "objectives_note": forms.Textarea(attrs={"rows": 2}),
            "went_well": forms.Textarea(attrs={"rows": 5}),
            "went_badly": forms.Textarea(attrs={"rows": 5}),
        }

    def review_data(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


def drafted_initial(review: PostImplementationReview) -> dict:
    """The drafts written from the record (``review_draft``) for the owner's fields that are still empty."""
    empty = [name for name in DRAFTED_FIELDS if not getattr(review, name).strip()]
    if not empty:
        return {}
    draft = review_draft(review.release)
    drafted = {
        "objectives": draft.objectives,
        "went_well": bullets(draft.went_well),
        "went_badly": bullets(draft.went_badly),
    }
    return {name: drafted[name] for name in empty}


class RowsFormSet(forms.BaseFormSet):
    """Rows the page adds and removes: blank rows are ignored, rows ticked for removal dropped."""

    def rows(self) -> list[dict]:
        """The rows kept, as dicts of their fields (call once the formset is valid)."""
        kept = [
            form
            for index, form in enumerate(self.forms)
            if (index < self.initial_form_count() or form.has_changed()) and not self._should_delete_form(form)
        ]
        return [{name: value for name, value in form.cleaned_data.items() if name != "DELETE"} for form in kept]


class LessonForm(forms.Form):
    text = forms.CharField(
        label="Lesson",
        max_length=TEXT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Its first line becomes the title of a knowledge article when the review is accepted.",
    )


class ActionItemForm(forms.Form):
    text = forms.CharField(label="What to do", max_length=TEXT_MAX_LENGTH)
    owner = forms.ModelChoiceField(User.objects.filter(is_active=True).order_by("username"), label="Owner")
    due_on = forms.DateField(label="Due on", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].label_from_instance = lambda user: user.get_full_name() or user.get_username()


LessonFormSet = forms.formset_factory(LessonForm, formset=RowsFormSet, extra=1, can_delete=True, max_num=50)
ActionItemFormSet = forms.formset_factory(
    ActionItemForm, formset=RowsFormSet, extra=1, can_delete=True, max_num=MAX_ACTION_ITEMS, validate_max=True
)


def review_formsets(review: PostImplementationReview) -> tuple[RowsFormSet, RowsFormSet]:
    """The lessons and action items of ``review``, to edit."""
    lessons = LessonFormSet(prefix="lessons", initial=[{"text": lesson} for lesson in review.lessons])
    items = ActionItemFormSet(
        prefix="items",
        initial=[{"text": item.text, "owner": item.owner, "due_on": item.due_on} for item in review.action_items.all()],
    )
    return lessons, items


def posted_formsets(data) -> tuple[RowsFormSet, RowsFormSet]:
    """The lessons and action items as posted: the rows on the page are the whole truth. They are not compared
    with the review's (which autosave may have changed since the page was drawn), so every filled row counts.
    """
    return LessonFormSet(data, prefix="lessons"), ActionItemFormSet(data, prefix="items")
