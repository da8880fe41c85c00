from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    name = "deployments"
    verbose_name = "Deployments"

    def ready(self):
        from deployments import promotions  # noqa: F401 - registers the promotion's Celery task
