"""The deployments app's browser pages; each module lists its own routes: rollouts (the list, the start, the live
page), rolling a release back (redeploying an earlier package), Early Life Support (the board and each period)
and incidents."""

from deployments.views import els, incidents, redeploy, rollout

urlpatterns = [*rollout.urlpatterns, *redeploy.urlpatterns, *els.urlpatterns, *incidents.urlpatterns]
