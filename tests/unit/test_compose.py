"""docker-compose.yml refuses to start without a JWT secret and passes the model settings
through (issue 13 item 5). Checked with ``docker-compose config``, which reads and
interpolates the file without contacting Docker; skipped where docker-compose is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = shutil.which("docker-compose")

pytestmark = pytest.mark.skipif(COMPOSE is None, reason="docker-compose is not installed")


def _config(**env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RUNWRIGHT_")}
    return subprocess.run(
        [str(COMPOSE), "-f", str(ROOT / "docker-compose.yml"), "config"],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_refuses_to_start_without_a_jwt_secret() -> None:
    result = _config()
    assert result.returncode != 0
    assert "RUNWRIGHT_JWT_SECRET" in result.stderr
    assert "change-me" not in (ROOT / "docker-compose.yml").read_text()


def test_compose_passes_the_secret_and_the_model_endpoint_through() -> None:
    result = _config(
        RUNWRIGHT_JWT_SECRET="s" * 40,
        RUNWRIGHT_DEFAULT_MODEL_BASE_URL="http://host.docker.internal:8080/v1",
        RUNWRIGHT_DEFAULT_MODEL_ID="my-model",
    )
    assert result.returncode == 0, result.stderr
    assert "RUNWRIGHT_JWT_SECRET: " + "s" * 40 in result.stdout
    assert "RUNWRIGHT_DEFAULT_MODEL_BASE_URL: http://host.docker.internal:8080/v1" in result.stdout
    assert "RUNWRIGHT_DEFAULT_MODEL_ID: my-model" in result.stdout


def test_compose_runs_two_replicas_on_one_database() -> None:
    result = _config(RUNWRIGHT_JWT_SECRET="s" * 40)
    assert result.returncode == 0, result.stderr
    services = result.stdout.split("services:\n", 1)[1]
    for name in ("runwright:", "runwright-2:"):
        assert f"\n  {name}\n" in services
    dsn = "DATABASE_URL: postgresql://runwright:runwright@postgres:5432/runwright"
    assert services.count(dsn) == 2
    assert "published: 8000" in services and "published: 8001" in services
