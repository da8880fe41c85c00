"""Fixtures shared by every test: real worker, real web server, demo users."""

import pytest
from django.db.backends.postgresql.operations import DatabaseOperations

from tests.harness.audit import audit_triggers_disabled
from tests.harness.processes import start_web_server, start_worker
from tests.harness.target_server import local_outbound, target_server  # noqa: F401 - fixtures for every test


@pytest.fixture(scope="session", autouse=True)
def _flush_past_the_audit_triggers():
    """Transactional tests end by truncating every table, which the audit table refuses; lift its triggers then."""
    flush = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        with audit_triggers_disabled():
            flush(self, sql_list)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseOperations, "execute_sql_flush", execute_sql_flush)
        yield


@pytest.fixture(autouse=True)
def _fast_password_hasher(request, settings):
    """Hash passwords with MD5: the production hasher is slow on purpose, and tests make many users.

    A test whose users sign in to a separately started server (which keeps the production hashers)
    opts out with ``@pytest.mark.real_password_hasher``.
    """
    if request.node.get_closest_marker("real_password_hasher") is None:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def process_log_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("processes")


@pytest.fixture
def worker_factory(transactional_db, process_log_dir):
    """Start real Celery worker subprocesses on the test database; all are stopped after the test."""
    workers = []

    def start(**kwargs):
        worker = start_worker(process_log_dir, **kwargs)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def celery_worker(worker_factory):
    """One real Celery worker consuming this session's queue."""
    return worker_factory()


@pytest.fixture(scope="session")
def web_server(django_db_setup, django_db_blocker, process_log_dir):
    """The app served the way production serves it (gunicorn), on the test database; yields its base URL."""
    with django_db_blocker.unblock():
        server, base_url = start_web_server(process_log_dir)
    yield base_url
    server.stop()


@pytest.fixture
def demo_users(db):
    """The demo users of every role, as ``make run`` loads them."""
    from rdm_site.demo import demo_users_load

    return {user.username: user for user in demo_users_load()}
