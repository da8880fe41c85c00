"""docker-compose.yml: the multi-host layout is complete and every service has a health check."""

import yaml

from rdm_site.embedded import PROJECT_ROOT


def _compose() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())


def test_compose_defines_web_worker_beat_postgres_and_redis_with_health_checks():
    services = _compose()["services"]
    assert set(services) == {"web", "worker", "beat", "postgres", "redis"}
    for name, service in services.items():
        assert service["healthcheck"]["test"], f"{name} has no health check"


def test_application_services_run_in_production_mode_on_the_compose_servers():
    services = _compose()["services"]
    for name in ("web", "worker", "beat"):
        environment = services[name]["environment"]
        assert environment["RDM_ENV"] == "production"
        assert environment["DATABASE_URL"].startswith("postgres://rdm:")
        assert "@postgres:5432/rdm" in environment["DATABASE_URL"]
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
        assert "?" in environment["SECRET_KEY"], "the secret must come from the environment, never the file"
    assert services["worker"]["command"][:4] == ["celery", "-A", "rdm_site", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "rdm_site", "beat"]
    assert services["web"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])


def test_web_serves_as_make_run_does_with_threads_for_the_live_streams_and_a_connection_pool():
    web = _compose()["services"]["web"]
    assert "command" not in web, "the image's command (python -m rdm_site.launcher serve) serves"
    assert web["environment"]["WEB_THREADS"] == "${WEB_THREADS:-256}"
    assert web["environment"]["DATABASE_POOL"] == "true"
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "exec python -m rdm_site.launcher serve" in dockerfile
