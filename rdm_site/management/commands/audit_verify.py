from django.core.management.base import BaseCommand, CommandError

from rdm_site.audit import audit_chain_verify


class Command(BaseCommand):
    help = (
        "Check the audit trail's hash chain against itself and against the last anchor of its head. Prints the "
        "anchor checked against, then OK and the head hash, or the first altered or missing event (or the newest "
        "events removed since the anchor) and exits with status 1."
    )

    def handle(self, *args, **options):
        report = audit_chain_verify()
        for before, after in report.id_gaps:
            self.stderr.write(f"hint: ids jump from #{before} to #{after} (a rolled-back transaction also does this)")
        anchor = report.anchor
        if anchor is None:
            self.stdout.write("anchor: none recorded yet (Celery beat records one when the head moves)")
        else:
            self.stdout.write(
                f"anchor: #{anchor.pk} at {anchor.recorded_at.isoformat(timespec='seconds')}: event "
                f"#{anchor.event_id}, {anchor.event_count} event(s), head {anchor.head_hash}"
            )
        if not report.ok:
            raise CommandError(f"audit chain broken after {report.events} intact event(s): {report.problem}")
        self.stdout.write(
            self.style.SUCCESS(f"OK: {report.events} audit event(s), chain intact, head {report.head_hash}")
        )
