from pathlib import Path

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from cmdb.choices import ImportFormat
from cmdb.exceptions import DomainError, ImportFailed
from cmdb.services import ci_import


class Command(BaseCommand):
    help = "Create or update CIs from a CSV or JSON file, all or nothing (format: see cmdb/importing.py)."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--format", choices=ImportFormat.values, help="default: from the file's extension")
        parser.add_argument("--as", dest="username", required=True, help="the user the import acts as")

    def handle(self, *args, path: Path, format: str | None, username: str, **options):
        file_format = format or path.suffix.lstrip(".").lower()
        if file_format not in ImportFormat.values:
            raise CommandError(f"cannot tell the format of {path.name}; pass --format csv or --format json")
        try:
            actor = User.objects.get(username=username)
            source = path.read_text(encoding="utf-8-sig")
        except User.DoesNotExist:
            raise CommandError(f"no user {username!r}") from None
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error.strerror}") from None
        try:
            result = ci_import(source=source, file_format=file_format, actor=actor)
        except ImportFailed as error:
            for where, reason in error.errors:
                self.stderr.write(f"{path.name}, {where}: {reason}")
            raise CommandError(f"nothing was imported: {len(error.errors)} problem(s)") from None
        except DomainError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(result.created)} CI(s) created, {len(result.updated)} updated, "
                f"{len(result.unchanged)} unchanged, {len(result.relationships_added)} relationship(s) added."
            )
        )
