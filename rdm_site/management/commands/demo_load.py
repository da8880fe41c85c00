from django.core.management.base import BaseCommand
from django.db import transaction

from cmdb.demo import demo_cmdb_load
from deployments.demo import demo_deployments_load
from deployments.demo_after_go_live import demo_after_go_live_load
from rdm_site.demo import DEMO_PASSWORD, demo_logins, demo_users_load
from releases.demo import demo_releases_load


class Command(BaseCommand):
    help = (
        "Load the demo data (users for each role, services, CIs, environments, releases, life after go-live). "
        "Idempotent."
    )

    @transaction.atomic
    def handle(self, *args, **options):
        demo_users_load()
        demo_cmdb_load()
        demo_releases_load()
        demo_deployments_load()
        demo_after_go_live_load()
        message = f"Demo data loaded. Every demo login uses the password {DEMO_PASSWORD!r}."
        self.stdout.write(self.style.SUCCESS(message))
        for username, roles in demo_logins():
            self.stdout.write(f"  {username:<16} {roles}")
