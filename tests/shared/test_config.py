import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.config import (
    DEFAULT_EMBEDDED_POSTGRES_DIR,
    DEVELOPMENT_SECRET,
    Environment,
    Settings,
)
from tests.conftest import settings_for_test

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LONG_SECRET = "x" * 32


def test_development_needs_no_configuration():
    settings = settings_for_test()

    assert settings.app_env is Environment.DEVELOPMENT
    assert settings.jwt_secret is not None
    assert settings.jwt_secret.get_secret_value() == DEVELOPMENT_SECRET
    # No DATABASE_URL: `main.py` starts the embedded PostgreSQL, its data in the project folder.
    assert settings.database_url is None
    assert settings.embedded_postgres_dir == PROJECT_ROOT / ".postgres"
    assert DEFAULT_EMBEDDED_POSTGRES_DIR == PROJECT_ROOT / ".postgres"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param(
            {"better_auth_secret": LONG_SECRET}, "DATABASE_URL is required", id="no database"
        ),
        pytest.param(
            {"database_url": "postgresql://db/x"}, "BETTER_AUTH_SECRET is required", id="no secret"
        ),
        pytest.param(
            {"database_url": "postgresql://db/x", "better_auth_secret": "short"},
            "at least 32 bytes",
            id="short secret",
        ),
        pytest.param(
            {"database_url": "postgresql://db/x", "better_auth_secret": DEVELOPMENT_SECRET},
            "development secret",
            id="development secret",
        ),
    ],
)
def test_production_refuses_to_start_without_real_configuration(values, message):
    with pytest.raises(ValidationError, match=message):
        settings_for_test(app_env="production", **values)


def test_production_starts_with_a_database_and_a_long_secret():
    settings = settings_for_test(
        app_env="production", database_url="postgresql://db/x", better_auth_secret=LONG_SECRET
    )

    assert settings.is_production
    assert settings.renders_json_logs


def test_a_short_secret_is_refused_in_development_too():
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        settings_for_test(better_auth_secret="s" * 31)


def test_secrets_never_appear_in_a_repr():
    settings = settings_for_test(
        better_auth_secret=LONG_SECRET + "-visible?", database_url="postgresql://u:hunter2@db/x"
    )

    assert "visible?" not in repr(settings)
    assert "hunter2" not in repr(settings)
    assert "visible?" not in str(settings.model_dump())


def test_lists_may_be_given_comma_separated(monkeypatch):
    monkeypatch.setenv("JWT_ALGORITHMS", "HS256, HS512")
    monkeypatch.setenv("CORS_ORIGINS", "https://app.example.com,http://localhost:3000")

    settings = settings_for_test()

    assert settings.jwt_algorithms == ["HS256", "HS512"]
    assert settings.cors_origins == ["https://app.example.com", "http://localhost:3000"]


@pytest.mark.parametrize("algorithms", ["none", "RS256", "HS256,none", ""])
def test_only_shared_secret_algorithms_may_be_configured(monkeypatch, algorithms):
    monkeypatch.setenv("JWT_ALGORITHMS", algorithms)

    with pytest.raises(ValidationError, match=r"jwt_algorithms"):
        settings_for_test()


def test_the_example_env_file_as_it_stands_is_a_valid_development_configuration():
    settings = settings_for_test(env_file=PROJECT_ROOT / ".env.example")

    assert settings.app_env is Environment.DEVELOPMENT
    assert settings.better_auth_secret is None
    assert settings.database_url is None
    assert settings.jwt_algorithms == ["HS256"]


def test_the_example_env_file_documents_every_setting():
    documented = {
        line.split("=", 1)[0]
        for line in (PROJECT_ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }

    assert documented == {name.upper() for name in Settings.model_fields}


def test_a_wildcard_cors_origin_is_refused():
    with pytest.raises(ValidationError, match="explicitly"):
        settings_for_test(cors_origins=["*"])


def _run_main(*arguments: str, **environment: str) -> subprocess.CompletedProcess:
    clean = {
        key: value
        for key, value in os.environ.items()
        if key.upper() not in {name.upper() for name in Settings.model_fields}
    }
    return subprocess.run(
        [sys.executable, "main.py", *arguments],
        cwd=PROJECT_ROOT,
        env={**clean, **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_run_command_explains_what_production_is_missing():
    result = _run_main("serve", APP_ENV="production", BETTER_AUTH_SECRET="too-short")

    assert result.returncode == 2
    assert "DATABASE_URL is required in production" in result.stderr
    assert "BETTER_AUTH_SECRET must be at least 32 bytes" in result.stderr
    assert "too-short" not in result.stderr + result.stdout


@pytest.mark.parametrize("command", [["serve"], ["migrate"], ["token", "alice"]])
@pytest.mark.parametrize("url", ["sqlite:///./tasks.db", "mysql://root@localhost/tasks"])
def test_the_run_command_refuses_a_database_other_than_postgresql(command, url):
    result = _run_main(*command, DATABASE_URL=url)

    assert result.returncode == 2
    assert result.stderr.startswith("configuration error: DATABASE_URL is a ")
    assert "PostgreSQL only" in result.stderr
    assert "leave it unset" in result.stderr
    assert "embedded PostgreSQL" in result.stderr


def test_the_token_command_explains_that_key_set_mode_has_no_secret_to_sign_with():
    result = _run_main("token", "alice", BETTER_AUTH_URL="https://app.example.com")

    assert result.returncode == 2
    assert "BETTER_AUTH_SECRET" in result.stderr
    assert "/api/auth/token" in result.stderr
