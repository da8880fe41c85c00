"""The live event stream of a deployment (Server-Sent Events)."""

urlpatterns = []
