"""Post-implementation reviews in the browser: the list, the review's page with the facts it was pre-filled from,
the owner's form (autosaved as a draft while it is typed) and the transitions (the API's services).
"""

from datetime import datetime

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.views.generic import TemplateView

from rdm_site.exceptions import DomainError, NotAllowed
from rdm_site.web import (
    ObjectDetailView,
    ObjectListView,
    RdmPermissionRequiredMixin,
    TransitionView,
    action_refused,
    service_write,
    view_permission,
)
from releases import selectors, services
from releases.actions import REVIEW_ACTIONS
from releases.api.reviews import ReviewViewSet
from releases.choices import ReviewState
from releases.filtersets import ReviewFilterSet
from releases.forms.review import ReviewForm, drafted_initial, posted_formsets, review_formsets
from releases.models import PostImplementationReview
from releases.tables import ReviewTable


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def review_facts(review: PostImplementationReview) -> dict:
    """What the review was pre-filled from (the rollout's timeline, the incidents during ELS, the checklist at
    go-live), with the moments the record keeps as text turned back into datetimes for the pages.
    """
    timeline = [
        {
            **story,
            "state_label": story["state"].replace("_", " "),
            "lines": [{**line, "at": _moment(line["at"])} for line in story["lines"]],
        }
        for story in review.timeline
    ]
    incidents = [
        {**incident, "opened_at": _moment(incident["opened_at"]), "resolved_at": _moment(incident["resolved_at"])}
        for incident in review.incidents
    ]
    return {"rollout": timeline, "els_incidents": incidents, "golive_checklist": review.checklist}


def may_write(review: PostImplementationReview, user) -> bool:
    rule = REVIEW_ACTIONS["update"]
    return rule.legal(review) and not rule.who_problems(review, user)


class ReviewListView(ObjectListView):
    queryset = selectors.reviews_table()
    filterset_class = ReviewFilterSet
    table_class = ReviewTable


class ReviewDetailView(ObjectDetailView):
    """The review: the facts from the record, what the owner wrote, the action items, the decision; the
    buttons of the review's rule table, and the form's link for its owner while it is open.
    """

    queryset = selectors.review_details()
    template_name = "releases/review_detail.html"
    action_rules = REVIEW_ACTIONS
    viewset = ReviewViewSet
    transition_url_name = "releases:review_transition"

    def get_context_data(self, **kwargs):
        review = self.object
        return super().get_context_data(
            **review_facts(review), may_write=may_write(review, self.request.user), **kwargs
        )


class ReviewTransitionView(TransitionView):
    viewset = ReviewViewSet


class ReviewFormMixin(RdmPermissionRequiredMixin):
    """The owner's form: only those the rule table's ``update`` admits, only while the review is open."""

    def get_permission_required(self):
        return [view_permission(PostImplementationReview)]

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.review = get_object_or_404(selectors.review_details(), pk=kwargs["pk"])
        refused = action_refused(request, REVIEW_ACTIONS, "update", self.review)
        return refused or super().dispatch(request, *args, **kwargs)

    def bound_forms(self):
        data = self.request.POST
        return (ReviewForm(data, instance=self.review), *posted_formsets(data))


class ReviewUpdateView(ReviewFormMixin, TemplateView):
    """``/reviews/<pk>/edit/``: the form pre-filled from the record where the owner's fields are still empty.
    Opening it starts the draft of a due (or returned) review through ``review_update``; saving it calls
    ``review_update`` with everything on the form.
    """

    template_name = "releases/review_form.html"

    def get(self, request, *args, **kwargs):
        if self.review.state != ReviewState.DRAFT:
            self.review = services.review_update(review=self.review, actor=request.user, data={})
        form = ReviewForm(instance=self.review, initial=drafted_initial(self.review))
        lessons, items = review_formsets(self.review)
        return self.render_to_response(self.get_context_data(form=form, lessons=lessons, items=items))

    def post(self, request, *args, **kwargs):
        form, lessons, items = self.bound_forms()
        if form.is_valid() and lessons.is_valid() and items.is_valid():
            data = {
                **form.review_data(),
                "lessons": [row["text"] for row in lessons.rows()],
                "action_items": items.rows(),
            }
            # the service re-reads the review under a lock: the values the form wrote into it do not count
            saved = service_write(
                request, form, lambda: services.review_update(review=self.review, actor=request.user, data=data)
            )
            if saved is not None:
                messages.success(request, "Draft saved. Submit it from here when it is complete.")
                return redirect(saved.get_absolute_url())
        return self.render_to_response(self.get_context_data(form=form, lessons=lessons, items=items), status=422)

    def get_context_data(self, **kwargs):
        return super().get_context_data(review=self.review, **review_facts(self.review), **kwargs)


class ReviewAutosaveView(ReviewFormMixin, TemplateView):
    """``POST /reviews/<pk>/autosave/``: the form posts itself while it is typed (htmx); what is valid is saved
    through ``review_update`` and a line says so. Action items are saved once every row is complete; until
    then the rest is saved and the line says what is missing.
    """

    template_name = "releases/inc/review_autosave.html"
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        form, lessons, items = self.bound_forms()
        problems = [
            f"{form.fields[name].label if name in form.fields else 'the review'}: {' '.join(errors)}"
            for name, errors in form.errors.items()
        ]
        problems += [
            f"lesson {number}: {' '.join(errors)}"
            for number, row in enumerate(lessons.errors, start=1)
            for errors in row.values()
        ]
        if problems:
            return self._answer(saved_at=None, problems=problems)
        data = {**form.review_data(), "lessons": [row["text"] for row in lessons.rows()]}
        pending = []
        if items.is_valid():
            data["action_items"] = items.rows()
        else:
            pending.append("an action item needs what to do, an owner and a due date before it is saved")
        try:
            services.review_update(review=self.review, actor=request.user, data=data)
        except NotAllowed:
            raise
        except DomainError as error:
            return self._answer(saved_at=None, problems=[str(error)])
        return self._answer(saved_at=timezone.localtime(), problems=pending)

    def _answer(self, *, saved_at, problems) -> TemplateResponse:
        return self.render_to_response({"saved_at": saved_at, "problems": problems})


urlpatterns = [
    path("reviews/", ReviewListView.as_view(), name="review_list"),
    path("reviews/<int:pk>/", ReviewDetailView.as_view(), name="review_detail"),
    path("reviews/<int:pk>/edit/", ReviewUpdateView.as_view(), name="review_update"),
    path("reviews/<int:pk>/autosave/", ReviewAutosaveView.as_view(), name="review_autosave"),
    path("reviews/<int:pk>/do/<str:action>/", ReviewTransitionView.as_view(), name="review_transition"),
]
