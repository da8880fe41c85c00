import hmac

from django.apps import apps
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.models import Group, User
from django.db.models import Prefetch
from django.http import (
    Http404,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_safe
from django.views.generic import ListView, TemplateView, View
from django_filters.views import FilterView
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from deployments.calendar import calendar_feed_ics
from rdm_site import dashboard
from rdm_site.calendar_feeds import (
    calendar_feed_address,
    calendar_feed_authenticate,
    calendar_feed_create,
    calendar_feed_revoke,
)
from rdm_site.exceptions import DomainError, InvalidInput, NotAllowed
from rdm_site.exports import audit_csv_lines
from rdm_site.filtersets import AuditEventFilterSet
from rdm_site.forms import TokenCreateForm
from rdm_site.health import DatabaseCollector, readiness
from rdm_site.models import ApiToken, AuditEvent
from rdm_site.notifications import notifications_mark_read
from rdm_site.pagination import ListPaginationMixin
from rdm_site.roles import ROLE_PERMISSIONS, Role, roles_of
from rdm_site.selectors import audit_events_in_id_order, calendar_feed_of, notifications_for, search, tokens_of
from rdm_site.tokens import token_create, token_revoke
from rdm_site.web import RdmPermissionRequiredMixin, refusal_message


class HomeView(RdmPermissionRequiredMixin, TemplateView):
    """The dashboard: the pipeline, what waits for the user, the coming weeks, rollouts, versions, figures."""

    permission_required = "auth.view_user"
    template_name = "rdm_site/home.html"

    def get_context_data(self, **kwargs):
        pipeline = dashboard.release_pipeline()
        return super().get_context_data(
            roles=roles_of(self.request.user),
            pipeline=pipeline,
            needs=dashboard.needs_action(self.request.user),
            schedule=dashboard.schedule(),
            schedule_days=dashboard.SCHEDULE_DAYS,
            schedule_items=dashboard.SCHEDULE_ITEMS,
            deployments=dashboard.active_deployments(),
            els_rows=dashboard.early_life_support_running(),
            now=timezone.now(),
            matrix=dashboard.what_runs_where(dashboard.recently_deployed_services()),
            matrix_limited=True,
            figures=dashboard.headline_figures(pipeline),
            **kwargs,
        )


class WhatRunsWhereView(RdmPermissionRequiredMixin, TemplateView):
    """Every service by environment, a page of services at a time (by name): the versions there, and where an
    earlier version can be redeployed."""

    permission_required = "deployments.view_deployment"
    template_name = "rdm_site/what_runs_where.html"

    def get_context_data(self, **kwargs):
        page = dashboard.services_page(self.request.GET.get("page"))
        return super().get_context_data(matrix=dashboard.what_runs_where(list(page)), page_obj=page, **kwargs)


class TeamView(RdmPermissionRequiredMixin, TemplateView):
    """Who holds which role, and what each role may change."""

    permission_required = "auth.view_group"
    template_name = "rdm_site/team.html"

    def get_context_data(self, **kwargs):
        members = Prefetch("user_set", queryset=User.objects.filter(is_active=True).order_by("username"))
        groups = {group.name: group for group in Group.objects.filter(name__in=Role.values).prefetch_related(members)}
        roles = [
            {
                "name": role.label,
                "members": groups[role.value].user_set.all() if role.value in groups else [],
                "may_change": sorted(ROLE_PERMISSIONS[role]),
            }
            for role in Role
        ]
        return super().get_context_data(roles=roles, **kwargs)


class AuditEventListView(RdmPermissionRequiredMixin, ListPaginationMixin, FilterView):
    """The audit trail, newest first; invalid filters show their errors and no rows."""

    permission_required = "rdm_site.view_auditevent"
    filterset_class = AuditEventFilterSet
    queryset = AuditEvent.objects.order_by("-id")
    paginate_by = 50
    template_name = "rdm_site/auditevent_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        events = list(context["object_list"])
        links = audit_object_links(events)
        for event in events:
            event.object_url = links.get((event.object_type, event.object_id), "")
        context["object_list"] = events
        return context


def audit_object_links(events: list[AuditEvent]) -> dict[tuple[str, str], str]:
    """The page of each record the events are about, for records that still exist and have a page: one query
    per object type.
    """
    ids_by_type: dict[str, set[str]] = {}
    for event in events:
        if event.object_type and event.object_id.isdigit():
            ids_by_type.setdefault(event.object_type, set()).add(event.object_id)
    links = {}
    for object_type, ids in ids_by_type.items():
        try:
            model = apps.get_model(object_type)
        except (LookupError, ValueError):
            continue
        if not hasattr(model, "get_absolute_url"):
            continue
        for pk, record in model._default_manager.in_bulk([int(pk) for pk in ids]).items():
            links[(object_type, str(pk))] = record.get_absolute_url()
    return links


class AuditExportView(RdmPermissionRequiredMixin, View):
    """The audit trail as streamed CSV, oldest first, with the list page's filters (400 when one is invalid)."""

    permission_required = "rdm_site.view_auditevent"

    def get(self, request):
        filterset = AuditEventFilterSet(request.GET, queryset=AuditEvent.objects.all())
        if not filterset.is_valid():
            return JsonResponse({"errors": filterset.errors}, status=400)
        response = StreamingHttpResponse(
            audit_csv_lines(audit_events_in_id_order(filterset.qs)), content_type="text/csv; charset=utf-8"
        )
        filename = f"rdm-audit-{timezone.now():%Y%m%d-%H%M%S}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    checks = readiness()
    ready = all(verdict == "ok" for verdict in checks.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)


@never_cache
@require_GET
def metrics(request):
    token = settings.METRICS_TOKEN
    offered = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if token and not hmac.compare_digest(offered.encode(), token.encode()):
        return HttpResponseForbidden("a valid metrics bearer token is required\n", content_type="text/plain")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class NotificationListView(LoginRequiredMixin, ListView):
    """A user's own notifications: anyone signed in may read (and mark read) only their own.

    ``?menu=1`` answers the top bar's dropdown: the latest few unread. Marking read from the dropdown (htmx)
    answers the menu again, with its count.
    """

    template_name = "rdm_site/notification_list.html"
    context_object_name = "notifications"
    paginate_by = 50
    menu_size = 5

    def get_queryset(self):
        return notifications_for(self.request.user)

    def get(self, request, *args, **kwargs):
        if request.GET.get("menu"):
            unread = notifications_for(request.user).filter(read_at__isnull=True)[: self.menu_size]
            return render(request, "rdm_site/inc/notifications_menu_items.html", {"latest_unread": unread})
        return super().get(request, *args, **kwargs)

    def post(self, request):
        """Mark one notification (``id``) or all of them read."""
        raw_id = request.POST.get("id", "")
        if raw_id and not raw_id.isdigit():
            return HttpResponseBadRequest("id must be a notification number")
        marked = notifications_mark_read(user=request.user, ids=[int(raw_id)] if raw_id else None)
        if request.htmx:
            return render(request, "rdm_site/inc/notifications_menu.html")
        messages.success(request, f"{marked} notification(s) marked read.")
        return redirect("notifications")


class SearchView(LoginRequiredMixin, TemplateView):
    """Releases, changes, services and CIs by name or number, each kind only for those who may view it."""

    template_name = "rdm_site/search.html"

    def get_context_data(self, **kwargs):
        query = self.request.GET.get("q", "").strip()[:200]
        return super().get_context_data(
            query=query, results=search(self.request.user, query) if query else [], **kwargs
        )


class TokenListView(LoginRequiredMixin, TemplateView):
    """A user's own API tokens (anyone signed in may hold tokens, scoped to what their roles allow), and a form
    to make one: its secret is shown once, in the answer to that form, and never again. Beside them, the user's
    calendar feed.
    """

    template_name = "rdm_site/token_list.html"

    def get_context_data(self, **kwargs):
        kwargs.setdefault("form", TokenCreateForm(user=self.request.user))
        return super().get_context_data(
            tokens=tokens_of(self.request.user), calendar_feed=calendar_feed_of(self.request.user), **kwargs
        )

    def post(self, request):
        form = TokenCreateForm(request.POST, user=request.user)
        if form.is_valid():
            try:
                token, secret = token_create(actor=request.user, **form.service_arguments())
            except NotAllowed:
                raise
            except InvalidInput as error:
                form.add_service_errors(error)
            except DomainError as error:
                refusal_message(request, error)
            else:
                messages.success(request, f"Token “{token.name}” made. Copy its secret now: it is not shown again.")
                return self.render_to_response(
                    self.get_context_data(form=TokenCreateForm(user=request.user), created=token, secret=secret)
                )
        return self.render_to_response(self.get_context_data(form=form))


class TokenRevokeView(LoginRequiredMixin, View):
    """Revoke one of one's own tokens (``token_revoke`` refuses anyone else's with 403)."""

    http_method_names = ["post"]

    def post(self, request, pk):
        token = get_object_or_404(ApiToken.objects.select_related("owner"), pk=pk)
        token_revoke(actor=request.user, token=token)
        messages.success(request, f"Token “{token.name}” revoked: requests carrying it are refused from now on.")
        return redirect("tokens")


class CalendarFeedCreateView(TokenListView):
    """Make one's calendar feed, or a new address for it (the old one stops working): the address is shown once,
    in the answer, on the tokens page.
    """

    http_method_names = ["post"]

    def post(self, request):
        _, secret = calendar_feed_create(actor=request.user)
        messages.success(request, "Calendar feed address made. Copy it now: it is not shown again.")
        feed_url = calendar_feed_address(request, secret)
        return self.render_to_response(self.get_context_data(calendar_feed_url=feed_url))


class CalendarFeedRevokeView(LoginRequiredMixin, View):
    """Revoke one's own calendar feed: calendars reading it get nothing new from now on."""

    http_method_names = ["post"]

    def post(self, request):
        feed = calendar_feed_of(request.user)
        if feed is None:
            messages.info(request, "You have no calendar feed to revoke.")
        else:
            calendar_feed_revoke(actor=request.user, feed=feed)
            messages.success(request, "Calendar feed revoked: its address answers nothing from now on.")
        return redirect("tokens")


@require_safe
def calendar_feed(request, secret):
    """The feed itself, for calendar applications: the secret in the address is the credential (no session),
    an unknown or revoked one is answered 404. Applications are asked to keep it no longer than a few minutes.
    """
    feed = calendar_feed_authenticate(secret)
    if feed is None:
        raise Http404("No calendar feed at this address.")
    body = calendar_feed_ics(user=feed.owner, absolute_url=request.build_absolute_uri)
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    response["Content-Disposition"] = 'inline; filename="rdm.ics"'
    response["X-Robots-Tag"] = "noindex"
    return response
