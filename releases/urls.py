"""The browser's release governance pages; each view module lists its own routes."""

from releases.views import change, knowledge, policy, release, review

app_name = "releases"

urlpatterns = [
    *release.urlpatterns,
    *change.urlpatterns,
    *policy.urlpatterns,
    *review.urlpatterns,
    *knowledge.urlpatterns,
]
