"""Deployments in the browser."""

urlpatterns = []
