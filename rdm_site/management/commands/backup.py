from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from rdm_site.backup import BackupError, database_available, database_backup


class Command(BaseCommand):
    help = (
        "Back up the database (the embedded one, started if needed, or DATABASE_URL's) to a compressed "
        "custom-format dump: backups/rdm-<UTC time>.dump unless --file names one. Prints the file, its size and "
        "the audit chain head it contains."
    )

    def add_arguments(self, parser):
        parser.add_argument("--file", type=Path, help="where to write the dump (must not exist yet)")

    def handle(self, *args, **options):
        try:
            with database_available():
                backup = database_backup(path=options["file"])
        except BackupError as error:
            raise CommandError(str(error)) from error
        head = backup.head
        described = f"event #{head.event_id}, {head.events} event(s), hash {head.hash}" if head.event_id else "empty"
        self.stdout.write(f"database: {backup.database}")
        self.stdout.write(f"audit chain head: {described}")
        self.stdout.write(self.style.SUCCESS(f"backup: {backup.path} ({backup.size:,} bytes)"))
