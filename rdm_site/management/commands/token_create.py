from datetime import timedelta

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from rdm_site.exceptions import DomainError
from rdm_site.scopes import Scope
from rdm_site.tokens import token_create


class Command(BaseCommand):
    help = (
        "Make an API token for USER and print it (shown this once). For automation and tests: "
        f"token_create USER --name NAME --scopes read,packages [--expires DAYS]. Scopes: {', '.join(Scope.values)}."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", required=True, help="What uses the token, e.g. jenkins-shop.")
        parser.add_argument("--scopes", required=True, help="Comma-separated scopes.")
        parser.add_argument("--expires", type=int, metavar="DAYS", help="Expire after this many days.")

    def handle(self, *args, username, name, scopes, expires, **options):
        owner = User.objects.filter(username=username).first()
        if owner is None:
            raise CommandError(f"no user {username!r}")
        if expires is not None and expires < 1:
            raise CommandError("--expires takes a number of days, at least 1")
        expires_at = timezone.now() + timedelta(days=expires) if expires else None
        try:
            _, raw = token_create(
                actor=owner,
                name=name,
                scopes=[scope.strip() for scope in scopes.split(",") if scope.strip()],
                expires_at=expires_at,
            )
        except DomainError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(raw)
