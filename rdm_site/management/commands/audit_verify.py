from django.core.management.base import BaseCommand, CommandError

from rdm_site.audit import audit_chain_verify


class Command(BaseCommand):
    help = (
        "Check the audit trail's hash chain. Prints OK and the head hash (keep it: comparing heads between runs "
        "is how removed newest events are caught), or the first altered or missing event and exits with status 1."
    )

    def handle(self, *args, **options):
        report = audit_chain_verify()
        for before, after in report.id_gaps:
            self.stderr.write(f"hint: ids jump from #{before} to #{after} (a rolled-back transaction also does this)")
        if not report.ok:
            raise CommandError(f"audit chain broken after {report.events} intact event(s): {report.problem}")
        self.stdout.write(
            self.style.SUCCESS(f"OK: {report.events} audit event(s), chain intact, head {report.head_hash}")
        )
