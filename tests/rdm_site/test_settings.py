"""Production mode: refuses unsafe defaults, and passes ``check --deploy`` when configured as documented."""

import subprocess
import sys

from rdm_site.embedded import PROJECT_ROOT
from tests.harness.processes import parent_env

PRODUCTION_ENV = {
    "RDM_ENV": "production",
    "SECRET_KEY": "k7#pV2qZ!x9Lm4Rt8Wn1Ys6Bd3Hf0Jc5Ge2Ua7Qo4Ti9Ek1Zr6Mw3Nb8Xv5Cy0Dp",
    "ALLOWED_HOSTS": "rdm.example.com",
    "DATABASE_URL": "postgres://rdm:secret@db.example.com:5432/rdm",
    "REDIS_URL": "redis://cache.example.com:6379/0",
    "METRICS_TOKEN": "scrape-token",
    "RDM_SECRETS_KEY": "0hzKfAQHdOMBAyR7ZITSU0UCjfxbJu2SbfBrhBpqsWY=",
}


def _manage(*args, **env):
    environment = {k: v for k, v in parent_env().items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG"}}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True
    )


def test_production_mode_refuses_to_start_with_every_unsafe_default_named():
    result = _manage("check", RDM_ENV="production")
    assert result.returncode != 0
    for problem in ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "METRICS_TOKEN", "RDM_SECRETS_KEY"):
        assert problem in result.stderr


def test_production_mode_refuses_debug():
    result = _manage("check", **PRODUCTION_ENV, DEBUG="true")
    assert result.returncode != 0
    assert "DEBUG must be off" in result.stderr


def test_production_mode_refuses_a_secrets_key_that_is_not_a_fernet_key():
    result = _manage("check", **{**PRODUCTION_ENV, "RDM_SECRETS_KEY": "not-a-key"})
    assert result.returncode != 0
    assert "RDM_SECRETS_KEY" in result.stderr


def test_documented_production_environment_passes_check_deploy_without_warnings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
