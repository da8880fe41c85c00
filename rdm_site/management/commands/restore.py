from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from rdm_site.backup import BackupError, database_available, database_restore


class Command(BaseCommand):
    help = (
        "Restore a backup made by the backup command into the database (the embedded one, started if needed, or "
        "DATABASE_URL's), in one transaction. Refuses a database that holds tables unless --force. Then prints "
        "what it restored and the migrations left to apply, and verifies the audit chain (exit status 1 if broken)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="the dump to restore")
        parser.add_argument(
            "--force", action="store_true", help="replace what the database holds with the backup's tables"
        )

    def handle(self, *args, **options):
        try:
            with database_available():
                restore = database_restore(path=options["file"], force=options["force"])
                self.stdout.write(f"restored {restore.path} into {restore.database}")
                rows = ", ".join(f"{label} {count:,}" for label, count in restore.rows.items())
                self.stdout.write(f"records: {sum(restore.rows.values()):,} in {len(restore.rows)} table(s): {rows}")
                if self._migrations(restore.unapplied_migrations, restore.unknown_migrations):
                    call_command("audit_verify", stdout=self.stdout, stderr=self.stderr)
                else:
                    self.stdout.write("audit chain: not verified until the schema matches this RDM (then audit_verify)")
        except BackupError as error:
            raise CommandError(str(error)) from error

    def _migrations(self, unapplied: list[str], unknown: list[str]) -> bool:
        """Print the migrations check; True when the restored schema is the one this code expects."""
        if unknown:
            self.stderr.write(
                f"migrations: the backup comes from a newer RDM ({len(unknown)} migration(s) this code does not "
                f"know: {', '.join(unknown)}); run that version or later"
            )
        if unapplied:
            self.stdout.write(
                f"migrations: {len(unapplied)} to apply ({', '.join(unapplied)}): run manage.py migrate before "
                "starting RDM"
            )
        if unknown or unapplied:
            return False
        self.stdout.write("migrations: up to date")
        return True
