"""The API benchmark's data, in its own database (run by bench/api.py with the bench settings):

- ``seed N``: the demo, then copies of a demo release (with its services, a package, a change and two
  approvals) and of a demo deployment until each table holds at least N rows;
- ``queries PATH``: how many queries the first page of PATH costs, signed in as the Viewer;
- ``token``: a read token of the Viewer, printed.

Bench rows are bulk-inserted copies (a benchmark's fixture, not product writes): the lists only read them.
"""

import copy
import sys

import django

django.setup()

from django.contrib.auth.models import User  # noqa: E402 - after django.setup()
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from deployments.models import Deployment  # noqa: E402
from releases.models import Approval, ChangeRecord, Release, ReleasePackage  # noqa: E402

VIEWER = "vera.viewer"


def _copies(template, count: int, **varying):
    """``count`` unsaved copies of ``template``; ``varying`` maps a field to a function of the copy's index."""
    rows = []
    for index in range(count):
        row = copy.copy(template)
        row.pk = row.id = None
        row._state = copy.copy(template._state)
        row._state.adding = True
        for field, value in varying.items():
            setattr(row, field, value(index))
        rows.append(row)
    return rows


def seed(rows: int) -> None:
    if not User.objects.filter(username=VIEWER).exists():
        call_command("demo_load", stdout=open("/dev/null", "w"))  # noqa: SIM115 - a sink for the demo's chatter
    missing = rows - Release.objects.count()
    if missing > 0:
        template = Release.objects.filter(packages__isnull=False, changes__isnull=False).order_by("id").first()
        package = template.packages.order_by("id").first()
        change = template.changes.order_by("id").first()
        approvers = list(User.objects.exclude(pk=template.release_manager_id).order_by("id")[:2])
        start = Release.objects.count()
        releases = Release.objects.bulk_create(
            _copies(template, missing, name=lambda n: f"Bench {start + n}", version=lambda n: "1.0")
        )
        Release.services.through.objects.bulk_create(
            Release.services.through(release_id=release.pk, service_id=service.pk)
            for release in releases
            for service in template.services.all()
        )
        ReleasePackage.objects.bulk_create(
            _copies(package, missing, release=lambda n: releases[n], superseded_by=lambda n: None)
        )
        ChangeRecord.objects.bulk_create(
            _copies(change, missing, release=lambda n: releases[n], number=lambda n: f"BENCH-{start + n}")
        )
        Approval.objects.bulk_create(
            Approval(release=release, approver=approver, decision="approved", reason="bench")
            for release in releases
            for approver in approvers
        )
    missing = rows - Deployment.objects.count()
    if missing > 0:
        template = Deployment.objects.order_by("id").first()
        Deployment.objects.bulk_create(_copies(template, missing, replaces=lambda n: None))


def queries(path: str) -> int:
    client = Client()
    client.force_login(User.objects.get(username=VIEWER))
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, HTTP_ACCEPT="application/json")
    if response.status_code != 200:
        raise SystemExit(f"{path} answered {response.status_code}: {response.content[:300]!r}")
    return len(captured.captured_queries)


def token() -> str:
    from rdm_site.models import ApiToken
    from rdm_site.tokens import token_create

    ApiToken.objects.filter(name="bench").delete()
    return token_create(actor=User.objects.get(username=VIEWER), name="bench", scopes=["read"])[1]


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    if command == "seed":
        seed(int(arguments[0]))
    elif command == "queries":
        print(queries(arguments[0]))
    elif command == "token":
        print(token())
    else:
        raise SystemExit(f"unknown command {command!r}")
