"""Several real ``runwright serve`` processes on one Postgres: the multi-node harness.

Each :class:`Node` is one ``runwright serve`` process (spawned by
:func:`tests.support.live_server.spawn_server`) with its own node id
(``RUNWRIGHT_NODE_ID``), port, data directory and log file, and the settings every node of a
deployment shares: ``DATABASE_URL``, the JWT secret and the secrets key (so a token, a
stream ticket or a sealed model key made on one node is good on every other). A test may
``kill()`` (SIGKILL), ``pause()`` (SIGSTOP), ``resume()`` (SIGCONT), ``terminate()``
(SIGTERM) and ``start()`` a node again; :func:`start_nodes` kills whatever is left when the
test ends, stopped nodes included.

Typical use, with the session's Postgres (``database_url`` fixture) or a private cluster
(``tests/faults/conftest.py``)::

    async with start_nodes(3, database_url=database_url, root=tmp_path,
                           env={"RUNWRIGHT_LEASE_SECONDS": "5"}) as (a, b, c):
        async with a.http(owner.headers) as http:
            ...
        await a.kill()

Readiness waits use :func:`tests.support.live_server.wait_healthy` with
:data:`START_BUDGET_SECONDS`, generous enough for three processes importing at once on a
loaded 2-core machine. :meth:`Node.log_tail` gives the last lines a node logged, for
assertion messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from runtime.processes import free_port
from runtime.secret_box import new_key_text
from storage import models as models_store
from storage.database import Database
from storage.models import BindingSpec
from tests.support.live_server import kill, spawn_server, wait_healthy
from tests.support.seed import Seeded, Seeder

START_BUDGET_SECONDS = 180.0
"""How long a node may take to answer ``/healthz`` after its start (seconds)."""

EXIT_BUDGET_SECONDS = 60.0
"""How long a node may take to exit after SIGTERM (seconds), on top of its grace period."""

NODE_SECRET = "nodes-secret-0123456789abcdef-0123456789abcdef"
"""The JWT secret every node of a harness shares (mint tokens for it with a Seeder)."""


def node_env(
    database_url: str, data_dir: Path, node_id: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of one node: this process's environment, the shared settings
    (``DATABASE_URL``, :data:`NODE_SECRET`, scripted engine on, no local model), the node's
    own id and data directory, then ``extra`` (which wins)."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "RUNWRIGHT_JWT_SECRET": NODE_SECRET,
        "RUNWRIGHT_SCRIPTED_ENGINE_ENABLED": "1",
        "RUNWRIGHT_LOCAL_MODEL_AUTOSTART": "0",
        "RUNWRIGHT_LOG_FORMAT": "text",
        "RUNWRIGHT_EGRESS_ALLOWED_NETWORKS": "127.0.0.0/8",
        "RUNWRIGHT_DB_POOL_MIN": "1",
        "RUNWRIGHT_DB_POOL_MAX": "6",
        "RUNWRIGHT_NODE_ID": node_id,
        "RUNWRIGHT_DATA_DIR": str(data_dir),
        **(extra or {}),
    }


@dataclass
class Node:
    """One ``runwright serve`` process of a harness.

    Attributes:
        node_id: its ``RUNWRIGHT_NODE_ID`` (what ``agent_runs.lease_owner`` holds for the
            runs it executes).
        port: its loopback HTTP port (kept across restarts).
        env: its whole environment.
        log_path: where its stdout and stderr go (appended across restarts).
        proc: the running process, or None before :meth:`start` / after it exited.
    """

    node_id: str
    port: int
    env: dict[str, str]
    log_path: Path
    proc: asyncio.subprocess.Process | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The process id (also its process group id).

        Raises:
            AssertionError: the node is not running.
        """
        assert self.proc is not None, f"node {self.node_id} is not running"
        return self.proc.pid

    async def start(self, *, budget: float = START_BUDGET_SECONDS) -> None:
        """Spawn the process and wait until ``/healthz`` answers 200.

        Raises:
            AssertionError: it exited or was not healthy within ``budget`` seconds (the
                message carries its log tail).
        """
        assert self.proc is None or self.proc.returncode is not None, "already running"
        proc = self.proc = await spawn_server(self.env, self.port, self.log_path)
        try:
            await wait_healthy(self.base_url, lambda: proc.returncode is None, budget=budget)
        except AssertionError as exc:
            raise AssertionError(f"node {self.node_id}: {exc}\n{self.log_tail()}") from None

    async def kill(self) -> None:
        """SIGKILL the process group (no shutdown hook runs; works on a paused node too)
        and reap it."""
        if self.proc is not None:
            await kill(self.proc)
            self.proc = None

    def pause(self) -> None:
        """SIGSTOP the process group: it keeps its sockets and connections but does
        nothing (a stalled node)."""
        os.killpg(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT the process group (after :meth:`pause`)."""
        os.killpg(self.pid, signal.SIGCONT)

    async def terminate(self, *, within: float = EXIT_BUDGET_SECONDS) -> int:
        """SIGTERM the process (it drains: docs/architecture.md "Graceful shutdown") and
        wait for it to exit; returns its exit code.

        Raises:
            AssertionError: it did not exit within ``within`` seconds (it is then killed).
        """
        proc = self.proc
        assert proc is not None, f"node {self.node_id} is not running"
        proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(proc.wait(), within)
        except TimeoutError:
            await self.kill()
            raise AssertionError(
                f"node {self.node_id} did not exit within {within} s\n{self.log_tail()}"
            ) from None
        self.proc = None
        return code

    @property
    def running(self) -> bool:
        """The process exists and has not exited (paused counts as running)."""
        return self.proc is not None and self.proc.returncode is None

    def http(self, headers: Mapping[str, str] | None = None, *, timeout: float = 60.0
             ) -> httpx.AsyncClient:  # fmt: skip
        """An HTTP client for this node (use it as ``async with``)."""
        return httpx.AsyncClient(base_url=self.base_url, headers=dict(headers or {}),
                                 timeout=timeout)  # fmt: skip

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines the node logged (for assertion messages)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return f"(node {self.node_id} logged nothing)"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- last lines of node {self.node_id} ---\n{tail}"


@contextlib.asynccontextmanager
async def start_nodes(
    count: int,
    *,
    database_url: str,
    root: Path,
    env: Mapping[str, str] | None = None,
    prefix: str = "node",
) -> AsyncIterator[list[Node]]:
    """Start ``count`` nodes on one database, concurrently, and yield them once every one
    is healthy; kill every node still running on exit (paused ones too).

    Args:
        count: how many nodes (ids ``<prefix>-a``, ``<prefix>-b``, ...).
        database_url: the Postgres every node uses; it must be migrated or migratable
            (each node applies migrations under an advisory lock at start).
        root: a directory for the nodes' data directories and logs.
        env: extra environment for every node (e.g. ``RUNWRIGHT_LEASE_SECONDS``).
        prefix: node id prefix.

    Raises:
        AssertionError: a node did not become healthy (its log tail is in the message).
    """
    shared = {"RUNWRIGHT_SECRETS_KEY": new_key_text(), **(env or {})}
    nodes: list[Node] = []
    for index in range(count):
        node_id = f"{prefix}-{chr(ord('a') + index)}"
        data_dir = root / node_id
        data_dir.mkdir(parents=True, exist_ok=True)
        nodes.append(
            Node(
                node_id=node_id,
                port=free_port(),
                env=node_env(database_url, data_dir, node_id, shared),
                log_path=root / f"{node_id}.log",
            )
        )
    try:
        await asyncio.gather(*(node.start() for node in nodes))
        yield nodes
    finally:
        for node in nodes:
            await node.kill()


async def seed_owner(database_url: str) -> Seeded:
    """A new tenant with an owner whose headers every node of a harness accepts (tokens
    minted for :data:`NODE_SECRET`)."""
    db = await Database.connect(database_url, min_size=1, max_size=1)
    try:
        return await Seeder(db, NODE_SECRET).tenant_admin()
    finally:
        await db.close()


async def operator_model(database_url: str, base_url: str) -> None:
    """Make the deployment's default model one served at ``base_url`` (an OpenAI-compatible
    server, e.g. a :class:`tests.support.scripted_openai.ScriptedOpenAI` in the test
    process that every node reaches): an operator model, since tenant models may not point
    at loopback."""
    db = await Database.connect(database_url, min_size=1, max_size=1)
    try:
        await models_store.create_model(
            db, tenant_id=None, name="scripted", is_default=True, status="active",
            bindings=[BindingSpec(provider="openai", provider_model_id="m", base_url=base_url)],
        )  # fmt: skip
    finally:
        await db.close()


async def create_app(http: httpx.AsyncClient) -> str:
    """Create an app through ``http`` (any node); returns its id."""
    slug = f"app-{uuid.uuid4().hex[:8]}"
    response = await http.post("/admin/apps", json={"name": slug, "slug": slug})
    assert response.status_code in (200, 201), response.text
    return str(response.json()["id"])


async def create_scripted_run(
    http: httpx.AsyncClient, app_id: str, script: list[dict[str, Any]]
) -> str:
    """Create a scripted-engine run through ``http``; returns its id."""
    body = {"input": "x", "engine": "scripted", "script": script}
    response = await http.post(f"/admin/apps/{app_id}/coding-agent/runs", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["run_id"])


async def lease_owner(database_url: str, run_id: str) -> str | None:
    """The node id holding the run's lease now (None when nobody does)."""
    conn = await asyncpg.connect(database_url, timeout=30)
    try:
        value = await conn.fetchval(
            "SELECT lease_owner FROM agent_runs WHERE id = $1", uuid.UUID(run_id)
        )
    finally:
        await conn.close()
    return None if value is None else str(value)


async def wait_for_owner(
    database_url: str, run_id: str, nodes: list[Node], *, within: float = 120.0
) -> Node:
    """Wait until one of ``nodes`` holds the run's lease (it executes the run); return it.

    Raises:
        AssertionError: none did within ``within`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    by_id = {node.node_id: node for node in nodes}
    while True:
        owner = await lease_owner(database_url, run_id)
        if owner in by_id:
            return by_id[owner]
        assert loop.time() < deadline, f"run {run_id} not executing on any node: {owner}"
        await asyncio.sleep(0.05)
