"""Fixtures of the CMDB tests: people in each role, and the audit events services write."""

from collections.abc import Sequence

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.db.models import Max

from rdm_site.models import AuditEvent
from rdm_site.roles import Role
from tests.factories import UserFactory


class RecordedAuditEvents(Sequence):
    """The real audit events written since the test began (or since ``clear()``), each shown as the keywords
    that would have written it: actor and target resolved to objects, empty fields left out."""

    def __init__(self):
        self.clear()

    def clear(self) -> None:
        self._after = AuditEvent.objects.aggregate(last=Max("id"))["last"] or 0

    def _events(self) -> list[dict]:
        return [_as_call(event) for event in AuditEvent.objects.filter(id__gt=self._after).order_by("id")]

    def __getitem__(self, index):
        return self._events()[index]

    def __len__(self) -> int:
        return len(self._events())

    def __eq__(self, other) -> bool:
        return self._events() == list(other)

    def __repr__(self) -> str:
        return repr(self._events())


def _as_call(event: AuditEvent) -> dict:
    model = apps.get_model(event.object_type)
    call = {
        "actor": User.objects.filter(pk=event.actor_id).first(),
        "action": event.action,
        "target": model.objects.filter(pk=event.object_id).first(),
    }
    for field in ("from_state", "to_state", "reason", "changes"):
        if value := getattr(event, field):
            call[field] = value
    return call


@pytest.fixture
def audit_calls(db):
    """The audit events the CMDB services write, read back from the trail itself."""
    return RecordedAuditEvents()


@pytest.fixture
def sophie(db):
    return UserFactory(username="sophie", roles=[Role.SERVICE_OWNER])


@pytest.fixture
def oscar(db):
    return UserFactory(username="oscar", roles=[Role.SERVICE_OWNER])


@pytest.fixture
def deployment_manager(db):
    return UserFactory(username="dan", roles=[Role.DEPLOYMENT_MANAGER])


@pytest.fixture
def viewer(db):
    return UserFactory(username="vera", roles=[Role.VIEWER])


@pytest.fixture
def administrator(db):
    return UserFactory(username="ada", is_superuser=True, is_staff=True)
