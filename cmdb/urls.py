from django.urls import path

from cmdb import views

app_name = "cmdb"

urlpatterns = [
    path("services/", views.ServiceListView.as_view(), name="service_list"),
    path("services/<int:pk>/", views.ServiceDetailView.as_view(), name="service_detail"),
    path("services/<int:pk>/edit/", views.ServiceUpdateView.as_view(), name="service_update"),
    path("cis/", views.ConfigurationItemListView.as_view(), name="ci_list"),
    path("cis/import/", views.ConfigurationItemImportView.as_view(), name="ci_import"),
    path("cis/<int:pk>/", views.ConfigurationItemDetailView.as_view(), name="ci_detail"),
    path("cis/<int:pk>/impact/", views.ConfigurationItemImpactView.as_view(), name="ci_impact"),
    path("cis/<int:pk>/do/<str:action>/", views.ConfigurationItemTransitionView.as_view(), name="ci_transition"),
    path("environments/", views.EnvironmentListView.as_view(), name="environment_list"),
    path("baselines/", views.BaselineListView.as_view(), name="baseline_list"),
    path("baselines/new/", views.BaselineCreateView.as_view(), name="baseline_create"),
    path("baselines/diff/", views.BaselineDiffView.as_view(), name="baseline_diff"),
    path("baselines/<int:pk>/", views.BaselineDetailView.as_view(), name="baseline_detail"),
]
