"""The ``runwright`` CLI through real subprocesses against the test database."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(settings, tmp_path):
    """Run ``python -m web.cli ARGS`` with the app's settings; returns (rc, stdout, stderr)."""
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "RUNWRIGHT_DATA_DIR": str(tmp_path / "cli-data"),
        "RUNWRIGHT_JWT_SECRET": settings.jwt_secret,
        "RUNWRIGHT_EGRESS_ALLOWED_NETWORKS": ",".join(settings.egress_allowed_networks),
    }

    async def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "web.cli", *args,
            cwd=REPO, env=env, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        data = None if stdin is None else stdin.encode()
        out, err = await asyncio.wait_for(proc.communicate(data), timeout=60)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    return run


def _single_id(stdout: str) -> uuid.UUID:
    assert stdout.endswith("\n") and stdout.count("\n") == 1, stdout
    return uuid.UUID(stdout.strip())


async def test_cli_sets_up_a_tenant_the_server_then_serves(cli, client):
    rc, out, _ = await cli("tenant", "create", "--name", "Acme Corp")
    assert rc == 0
    tenant_id = _single_id(out)
    rc, out, _ = await cli("user", "create", "--email", "owner@acme.test")
    assert rc == 0
    user_id = _single_id(out)
    rc, out, err = await cli(
        "member", "add", "--tenant", str(tenant_id), "--user", str(user_id), "--role", "owner"
    )
    assert (rc, out) == (0, "")
    assert "added user" in err
    rc, out, _ = await cli(
        "model", "add", "--tenant", str(tenant_id), "--name", "local",
        "--provider", "openai", "--provider-model-id", "smol",
        "--base-url", "http://127.0.0.1:9/v1", "--default",
    )  # fmt: skip
    assert rc == 0
    model_id = _single_id(out)
    rc, out, _ = await cli("token", "--user", str(user_id), "--tenant", str(tenant_id))
    assert rc == 0
    token = out.strip()
    assert out.count("\n") == 1 and token.count(".") == 2

    # The running app (same database, same secret) accepts the token and sees the model.
    headers = {"Authorization": f"Bearer {token}", "X-Tenant-ID": str(tenant_id)}
    response = await client.get("/admin/models", headers=headers)
    assert response.status_code == 200
    listed = await response.get_json()
    assert [(m["id"], m["is_default"]) for m in listed] == [(str(model_id), True)]


async def test_cli_expected_failures_exit_1_without_traceback(cli):
    assert (await cli("tenant", "create", "--name", "Dup", "--slug", "dup"))[0] == 0
    rc, out, err = await cli("tenant", "create", "--name", "Dup", "--slug", "dup")
    assert (rc, out) == (1, "")
    assert err.strip() == "error: a tenant with slug 'dup' already exists"
    rc, out, err = await cli(
        "member", "add", "--tenant", str(uuid.uuid4()), "--user", str(uuid.uuid4()),
        "--role", "admin",
    )  # fmt: skip
    assert rc == 1 and err.strip() == "error: no such tenant or user"
    rc, out, err = await cli("token", "--user", str(uuid.uuid4()), "--tenant", str(uuid.uuid4()))
    assert rc == 1 and err.startswith("error: no such user")
    assert "Traceback" not in err


async def test_cli_model_add_follows_the_credential_and_egress_rules(cli, client, seed, owner):
    """docs/security.md: the CLI registers models under the API's rules."""
    common = ("--name", "m", "--provider", "openai", "--provider-model-id", "i")
    tenant = ("model", "add", "--tenant", str(owner.tenant_id), *common)
    rc, out, err = await cli(*tenant, "--base-url", "http://127.0.0.1:9/v1",
                             "--api-key-env", "RUNWRIGHT_JWT_SECRET")  # fmt: skip
    assert (rc, out) == (1, "") and "tenant models cannot take their key" in err
    rc, _, err = await cli("model", "add", "--global", *common, "--base-url",
                           "http://127.0.0.1:9/v1", "--api-key-env", "PATH")  # fmt: skip
    assert rc == 1 and "not in RUNWRIGHT_MODEL_KEY_ENV_ALLOWLIST" in err
    rc, _, err = await cli(*tenant, "--base-url", "http://169.254.169.254/latest")
    assert rc == 1 and "--base-url is not allowed by the server's egress policy" in err

    rc, out, err = await cli(*tenant, "--base-url", "http://127.0.0.1:9/v1", "--api-key-stdin",
                             stdin="sk-from-stdin\n")  # fmt: skip
    assert rc == 0, err
    model_id = _single_id(out)
    listed = await (await client.get("/admin/models", headers=owner.headers)).get_json()
    [model] = [m for m in listed if m["id"] == str(model_id)]
    assert model["bindings"][0]["has_api_key"] is True
    assert "sk-from-stdin" not in str(listed)


async def test_cli_usage_errors_exit_2(cli):
    rc, _, err = await cli("member", "add", "--tenant", "nope", "--user", "x", "--role", "owner")
    assert rc == 2 and "not a UUID" in err
    rc, _, err = await cli("model", "add", "--name", "m", "--provider", "p",
                           "--provider-model-id", "i", "--base-url", "u")  # fmt: skip
    assert rc == 2 and "one of the arguments --tenant --global is required" in err
    rc, out, _ = await cli("token", "--help")
    assert rc == 0 and "--ttl" in out
    assert (await cli())[0] == 2


async def test_serve_answers_and_stops_cleanly_on_sigterm(settings, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "RUNWRIGHT_DATA_DIR": str(tmp_path / "serve-data"),
        "RUNWRIGHT_JWT_SECRET": settings.jwt_secret,
        "RUNWRIGHT_LOCAL_MODEL_AUTOSTART": "false",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "web.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(100):
                try:
                    response = await http.get("/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.2)
            else:
                pytest.fail("server did not come up")
            assert response.json() == {"status": "ok", "database": "ok"}
            missing = await http.get("/admin/apps")
            assert (missing.status_code, missing.json()) == (
                401,
                {"detail": "Missing bearer token"},
            )
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
        assert proc.returncode == 0, err.decode()
        assert b"Traceback" not in err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
