from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from rdm_site import views
from rdm_site.api.urls import schema_urlpatterns

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("team/", views.TeamView.as_view(), name="team"),
    path("running/", views.WhatRunsWhereView.as_view(), name="what_runs_where"),
    path("notifications/", views.NotificationListView.as_view(), name="notifications"),
    path("audit/", views.AuditEventListView.as_view(), name="audit"),
    path("search/", views.SearchView.as_view(), name="search"),
    path("tokens/", views.TokenListView.as_view(), name="tokens"),
    path("tokens/<int:pk>/revoke/", views.TokenRevokeView.as_view(), name="token_revoke"),
    path("tokens/calendar-feed/", views.CalendarFeedCreateView.as_view(), name="calendar_feed_create"),
    path("tokens/calendar-feed/revoke/", views.CalendarFeedRevokeView.as_view(), name="calendar_feed_revoke"),
    path("calendar/<slug:secret>.ics", views.calendar_feed, name="calendar_feed"),
    path("", include("releases.urls")),
    path("", include("cmdb.urls")),
    path("", include("deployments.urls")),
    path("audit/export.csv", views.AuditExportView.as_view(), name="audit-export"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("rdm_site.api.urls")),
    path("api/", include(schema_urlpatterns)),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
]

admin.site.site_header = "RDM administration"
admin.site.site_title = "RDM"
