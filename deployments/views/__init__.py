"""The deployments app's browser pages; each module lists its own routes: rollouts (the list, the start, the live
page), rolling a release back (redeploying an earlier package), promotions, Early Life Support (the board and each
period), incidents and the DORA report."""

from deployments.views import els, incidents, promotion, redeploy, reports, rollout

urlpatterns = [
    *rollout.urlpatterns,
    *redeploy.urlpatterns,
    *promotion.urlpatterns,
    *els.urlpatterns,
    *incidents.urlpatterns,
    *reports.urlpatterns,
]
