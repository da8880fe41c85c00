"""The deployments app's browser pages; each module lists its own routes: rollouts (the list, the start, the live
page), Early Life Support (the board and each period) and incidents."""

from deployments.views import els, incidents, rollout

urlpatterns = [*rollout.urlpatterns, *els.urlpatterns, *incidents.urlpatterns]
