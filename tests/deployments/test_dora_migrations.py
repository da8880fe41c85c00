"""The migrations of DORA's per-deployment facts on a table that keeps being written: the columns and the
backfill (``0011``) are not one long transaction, and the index (``0012``) is built concurrently (the test of
a concurrent build holding writers back or not is ``tests/rdm_site/test_concurrent_index.py``)."""

from importlib import import_module

import pytest
from django.core.management import call_command

from deployments.models import Deployment
from tests.deployments.test_dora_facts import varied_world

pytestmark = pytest.mark.django_db(transaction=True)


def migration(name: str):
    return import_module(f"deployments.migrations.{name}").Migration


def test_neither_migration_runs_in_one_transaction():
    assert migration("0011_dora_facts").atomic is False
    index = migration("0012_deployment_dora_index")
    assert index.atomic is False
    assert {type(operation).__name__ for operation in index.operations} == {"AddIndexConcurrently"}


def test_migrating_fills_the_facts_of_the_deployments_there_were():
    # given deployments whose facts were recorded as each ended
    varied_world(6)
    recorded = set(Deployment.objects.values_list("id", "change_started_at", "followed_by_hotfix"))
    assert any(followed for _, _, followed in recorded)

    # when the database goes back to before the facts, and forward again
    call_command("migrate", "deployments", "0010", verbosity=0)
    call_command("migrate", "deployments", verbosity=0)

    # then the backfill gave every deployment the facts its end had recorded
    assert set(Deployment.objects.values_list("id", "change_started_at", "followed_by_hotfix")) == recorded
