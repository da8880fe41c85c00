from django.urls import path

from cmdb import views

app_name = "cmdb"

urlpatterns = [
    path("services/", views.ServiceListView.as_view(), name="service_list"),
    path("cis/", views.ConfigurationItemListView.as_view(), name="ci_list"),
    path("environments/", views.EnvironmentListView.as_view(), name="environment_list"),
    path("baselines/", views.BaselineListView.as_view(), name="baseline_list"),
]
