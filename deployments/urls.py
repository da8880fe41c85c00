"""The browser's deployment pages and their live event streams; each module lists its own routes."""

from deployments import reports, streaming, views
from deployments.views import promotion

app_name = "deployments"

urlpatterns = [*views.urlpatterns, *promotion.urlpatterns, *reports.urlpatterns, *streaming.urlpatterns]
