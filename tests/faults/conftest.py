"""Fault-suite fixtures: each test owns a private Postgres cluster it may stop, kill or
restart (:mod:`tests.support.cluster`), never the session's shared server.

``database_url`` is overridden to a migrated database on that cluster, so the usual
``settings`` / ``app`` / ``client`` / ``owner`` fixtures work against it unchanged.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from runtime.settings import Settings
from storage.database import Database
from storage.migrate import apply_migrations
from tests.support.cluster import DATABASE, Cluster, initdb_template, missing


def _scratch(prefix: str) -> Path:
    # Not under pytest's tmp_path: that is private to root, and the server may run as the
    # postgres user, which must reach its directory.
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(path, 0o755)
    return path


@pytest.fixture(scope="session")
def cluster_template() -> Iterator[Path]:
    """One ``initdb`` per session; every cluster starts from a copy of it."""
    reason = missing()
    if reason is not None:
        pytest.skip(f"fault suite needs its own Postgres cluster: {reason}")
    root = _scratch("runwright-pg-template-")
    try:
        yield initdb_template(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def cluster(cluster_template: Path) -> AsyncIterator[Cluster]:
    """A running private cluster with a migrated database :data:`DATABASE`; destroyed
    after the test (whatever state the test left it in)."""
    cluster = Cluster(cluster_template, _scratch("runwright-pg-") / "cluster")
    try:
        await cluster.start()
        await cluster.execute(f'CREATE DATABASE "{DATABASE}"')
        db = await Database.connect(cluster.dsn(DATABASE), min_size=1, max_size=1)
        try:
            await apply_migrations(db)
        finally:
            await db.close()
        yield cluster
    finally:
        await cluster.destroy()


@pytest.fixture
def database_url(cluster: Cluster) -> str:
    return cluster.dsn(DATABASE)


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """Scripted engine on; readiness probes often so tests see state changes quickly."""
    return make_settings(scripted_engine_enabled=True, readiness_interval_seconds=0.2)
