"""The managed OpenCode server holds none of Runwright's secrets in its environment
(docs/security.md): its own file tools run in that process, so a prompt-injected model
reading ``/proc/self/environ`` must find nothing worth taking."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from runtime.engines.opencode import locate_binary
from runtime.engines.opencode.server import ManagedServer
from runtime.settings import Settings
from tests.support.opencode import binary_missing

pytestmark = [
    pytest.mark.opencode,
    pytest.mark.skipif(binary_missing() is not None, reason=str(binary_missing())),
]


async def test_the_managed_server_inherits_no_secret(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("RUNWRIGHT_JWT_SECRET", "jwt-secret-that-must-stay-home-0123456789")
    monkeypatch.setenv("DATABASE_URL", "postgresql://admin:hunter2@db.internal/runwright")
    monkeypatch.setenv("ALLOWED_PROVIDER_KEY", "sk-operator-key")
    monkeypatch.setenv("OTHER_PROVIDER_KEY", "sk-not-named-by-the-operator")
    server = ManagedServer(
        locate_binary(Settings()),
        tmp_path / "opencode",
        tmp_path / "config",
        start_timeout=120.0,
        key_env_names=("ALLOWED_PROVIDER_KEY",),
    )
    await server.start()
    try:
        assert server.pid is not None
        raw = await asyncio.to_thread(Path(f"/proc/{server.pid}/environ").read_bytes)
        environ = raw.split(b"\0")
        names = {entry.split(b"=", 1)[0].decode() for entry in environ if entry}
    finally:
        await server.stop()
    assert "ALLOWED_PROVIDER_KEY" in names  # {env:NAME} of an allowed global model
    assert "PATH" in names and "OPENCODE_SERVER_PASSWORD" in names
    assert not names & {"RUNWRIGHT_JWT_SECRET", "DATABASE_URL", "OTHER_PROVIDER_KEY"}
