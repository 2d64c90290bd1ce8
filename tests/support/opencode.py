"""Shared helpers for tests that run a real managed ``opencode serve``.

Needs the pinned binary (``runwright opencode install``); tests check
:func:`binary_missing` and skip without it. Managed servers keep their state in warm
directories under ``.cache/opencode-test/<name>`` (:func:`warm_dir`), so OpenCode's one-off
set-up is not repeated on every test run; each directory is locked by the process using it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.engines.opencode import OpenCodeEngine, OpenCodeNotInstalled, locate_binary
from runtime.settings import Settings

REPO = Path(__file__).resolve().parents[2]
WARM_DIR = REPO / ".cache" / "opencode-test"

# Fast failure detection and short grace periods (the defaults suit production).
FAST_OPENCODE: dict[str, object] = {
    "opencode_enabled": True,
    "opencode_managed": True,
    "opencode_health_cache_seconds": 3.0,
    "opencode_upstream_deadline_seconds": 3.0,
    "opencode_cancel_timeout_seconds": 10.0,
    "opencode_request_timeout_seconds": 30.0,
    "opencode_stop_grace_seconds": 3.0,
}


def binary_missing() -> str | None:
    """Why the pinned OpenCode binary cannot be used here, or None when it is installed."""
    try:
        locate_binary(Settings())
    except OpenCodeNotInstalled as exc:
        return str(exc)
    return None


@contextlib.contextmanager
def warm_dir(name: str, factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``.cache/opencode-test/<name>``, locked for this process; a fresh temporary directory
    when another test run holds it (two servers must never share one OpenCode home)."""
    path = WARM_DIR / name
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield factory.mktemp(name)
            return
        try:
            yield path
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def engine_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings for an :class:`OpenCodeEngine` with a managed server under ``data_dir``
    (:data:`FAST_OPENCODE` plus ``overrides``)."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "egress_allowed_networks": ("127.0.0.0/8",),  # the scripted model on loopback
        **FAST_OPENCODE,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def prepare(data_dir: Path) -> None:
    """Create ``data_dir`` and drop the provider config an earlier test run left behind
    (its providers point at dead ports)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "opencode" / "config" / "opencode.json").unlink(missing_ok=True)


async def started_engine(data_dir: Path, **overrides: object) -> OpenCodeEngine:
    """An :class:`OpenCodeEngine` whose managed server runs under ``data_dir`` (stop it with
    ``await engine.stop()``)."""
    await asyncio.to_thread(prepare, data_dir)
    engine = OpenCodeEngine(engine_settings(data_dir, **overrides))
    await engine.start()
    return engine
