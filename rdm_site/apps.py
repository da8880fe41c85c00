from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RdmSiteConfig(AppConfig):
    name = "rdm_site"
    verbose_name = "RDM platform"

    def ready(self):
        post_migrate.connect(_sync_roles_after_migrate, sender=self)


def _sync_roles_after_migrate(**kwargs):
    from rdm_site.roles import roles_sync

    roles_sync()
