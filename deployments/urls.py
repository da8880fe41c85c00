"""The browser's deployment pages and their live event streams; each module lists its own routes."""

from deployments import streaming, views

app_name = "deployments"

urlpatterns = [*views.urlpatterns, *streaming.urlpatterns]
