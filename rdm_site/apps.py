from django.apps import AppConfig
from django.core.signals import request_finished
from django.db.models.signals import post_migrate


class RdmSiteConfig(AppConfig):
    name = "rdm_site"
    verbose_name = "RDM platform"

    def ready(self):
        from rdm_site import signals
        from rdm_site.middleware import request_id_clear

        post_migrate.connect(_sync_roles_after_migrate, sender=self)
        request_finished.connect(request_id_clear, dispatch_uid="rdm_request_id_clear")
        signals.connect()


def _sync_roles_after_migrate(**kwargs):
    from rdm_site.roles import roles_sync

    roles_sync()
