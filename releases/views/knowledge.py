"""The knowledge base in the browser: search (ranked, with the matches highlighted), an article's page, and the
article's form for those who write them (``knowledge_article_create`` and ``knowledge_article_update``).
"""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils.functional import cached_property
from django.utils.safestring import mark_safe
from django.views.generic import ListView, TemplateView

from rdm_site.web import ObjectDetailView, RdmPermissionRequiredMixin, service_write, view_permission
from releases import services
from releases.forms.knowledge import KnowledgeArticleForm, KnowledgeSearchForm
from releases.knowledge import highlighted, knowledge_list, knowledge_search
from releases.models import KnowledgeArticle
from releases.permissions import ADD_KNOWLEDGE_ARTICLE, CHANGE_KNOWLEDGE_ARTICLE


class KnowledgeSearchView(RdmPermissionRequiredMixin, ListView):
    """``/knowledge/?q=…&service=…``: the best matches first, each with its title and its best fragments
    highlighted; without words, every article (of the service), newest first.
    """

    template_name = "releases/knowledge_search.html"
    context_object_name = "articles"
    paginate_by = 20

    def get_permission_required(self):
        return [view_permission(KnowledgeArticle)]

    def get_queryset(self):
        self.form = KnowledgeSearchForm(self.request.GET)
        if not self.form.is_valid():
            return knowledge_list().none()
        return knowledge_search(self.form.cleaned_data["q"], self.form.cleaned_data["service"])

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        for article in context["articles"]:
            # ``highlighted`` escapes the article's text and adds only the <mark> tags
            article.title_html = mark_safe(highlighted(getattr(article, "title_headline", "")))  # noqa: S308
            article.body_html = mark_safe(highlighted(getattr(article, "body_headline", "")))  # noqa: S308
        return {
            **context,
            "form": self.form,
            "query": self.form.cleaned_data.get("q", "") if self.form.is_valid() else "",
            "may_write": self.request.user.has_perm(ADD_KNOWLEDGE_ARTICLE),
        }


class KnowledgeDetailView(ObjectDetailView):
    queryset = knowledge_list()
    template_name = "releases/knowledge_detail.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(may_edit=self.request.user.has_perm(CHANGE_KNOWLEDGE_ARTICLE), **kwargs)


class KnowledgeCreateView(RdmPermissionRequiredMixin, TemplateView):
    """Write an article (Release Managers and Service Owners): ``?service=`` chooses its service."""

    permission_required = ADD_KNOWLEDGE_ARTICLE
    template_name = "releases/knowledge_form.html"

    def get(self, request, *args, **kwargs):
        form = KnowledgeArticleForm(initial={"service": request.GET.get("service") or None})
        return self.render_to_response(self.get_context_data(form=form))

    def post(self, request, *args, **kwargs):
        form = KnowledgeArticleForm(request.POST)
        if form.is_valid():
            article = service_write(
                request, form, lambda: services.knowledge_article_create(actor=request.user, **form.create_data())
            )
            if article is not None:
                messages.success(request, f"Article “{article}” written.")
                return redirect(article.get_absolute_url())
        return self.render_to_response(self.get_context_data(form=form), status=422)


class KnowledgeUpdateView(RdmPermissionRequiredMixin, TemplateView):
    """Improve an article; the trail keeps what it said before."""

    permission_required = CHANGE_KNOWLEDGE_ARTICLE
    template_name = "releases/knowledge_form.html"

    @cached_property
    def article(self) -> KnowledgeArticle:
        return get_object_or_404(knowledge_list(), pk=self.kwargs["pk"])

    def get(self, request, *args, **kwargs):
        return self.render_to_response(self.get_context_data(form=KnowledgeArticleForm(instance=self.article)))

    def post(self, request, *args, **kwargs):
        form = KnowledgeArticleForm(request.POST, instance=self.article)
        if form.is_valid():
            # the service re-reads the article under a lock: the values the form wrote into it do not count
            article = service_write(
                request,
                form,
                lambda: services.knowledge_article_update(
                    article=self.article, actor=request.user, data=form.changed_article()
                ),
            )
            if article is not None:
                messages.success(request, f"Article “{article}” saved.")
                return redirect(article.get_absolute_url())
        return self.render_to_response(self.get_context_data(form=form), status=422)

    def get_context_data(self, **kwargs):
        return super().get_context_data(article=self.article, **kwargs)


urlpatterns = [
    path("knowledge/", KnowledgeSearchView.as_view(), name="knowledge_search"),
    path("knowledge/new/", KnowledgeCreateView.as_view(), name="knowledge_create"),
    path("knowledge/<int:pk>/", KnowledgeDetailView.as_view(), name="knowledge_detail"),
    path("knowledge/<int:pk>/edit/", KnowledgeUpdateView.as_view(), name="knowledge_update"),
]
