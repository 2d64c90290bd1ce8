"""``/livez``, ``/readyz`` and ``/healthz`` (issue 10, part 2 item 6): readiness is answered
from memory, so it stays fast and correct while every pool connection is busy."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from storage.database import Database


async def test_livez_readyz_and_healthz_when_healthy(client: Any) -> None:
    live = await client.get("/livez")
    assert (live.status_code, await live.get_json()) == (200, {"status": "ok"})
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    body = await ready.get_json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == "ok"
    assert set(body["checks"].values()) == {"ok"}
    health = await client.get("/healthz")
    assert (health.status_code, await health.get_json()) == (
        200,
        {"status": "ok", "database": "ok"},
    )


async def test_readyz_answers_while_every_pool_connection_is_busy(
    client: Any, db: Database, settings: Any
) -> None:
    """Every pooled connection is checked out and held: a health check that went through
    the pool would wait behind them; readiness answers and says ready."""
    release = asyncio.Event()
    held = asyncio.Semaphore(0)

    async def hold() -> None:
        async with db.transaction() as tx:
            await tx.fetchval("health_ping")  # the connection is now checked out
            held.release()
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(settings.db_pool_max)]
    try:
        for _ in holders:
            await asyncio.wait_for(held.acquire(), 30)
        # The pool is exhausted: a pooled query cannot start.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(db.fetchval("health_ping"), 0.5)
            raise AssertionError("the pool still had a free connection")
        for path in ("/readyz", "/healthz", "/livez"):
            response = await asyncio.wait_for(client.get(path), 10)
            assert response.status_code == 200, await response.get_data(as_text=True)
    finally:
        release.set()
        await asyncio.gather(*holders)


async def test_readyz_is_red_while_the_process_drains(client: Any, services: Any) -> None:
    """SIGTERM's first step (issue 10, item 4): once the runs service drains, readiness
    says so (take the process out of rotation); liveness stays green."""
    assert (await client.get("/readyz")).status_code == 200
    await services.runs.drain()
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    detail = (await ready.get_json())["detail"]
    assert detail["code"] == "NOT_READY"
    assert detail["checks"]["draining"] == "draining"
    assert detail["checks"]["database"] == "ok"
    assert (await client.get("/livez")).status_code == 200
