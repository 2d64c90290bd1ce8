"""Webhook delivery is fair across tenants (docs/architecture.md "Webhook outbox"), on two
real ``runwright serve`` processes sharing one Postgres.

Tenant A's runs all report to a black hole: a loopback socket that accepts connections
and never answers, so each attempt holds its delivery slot for the whole (long) timeout.
Each node has 2 slots and the per-tenant cap is 3, counted across the nodes: A holds
exactly 3 of the 4 slots, and tenant B's delivery goes through the fourth at once instead
of waiting out A's timeouts (ordered by due time alone, A's backlog held every slot).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from tests.support.nodes import create_app, seed_owner, start_nodes
from tests.support.serve_process import until
from tests.support.webhook_receiver import webhook_receiver

TIMEOUT_SECONDS = 120.0  # an attempt at the black hole holds its slot this long
BOUND_SECONDS = 45.0  # B's delivery, from its run's creation: far below the timeout
WITHIN = 120.0  # generous: two processes on a loaded 2-core machine
A_RUNS = 8
SETTINGS = {
    "RUNWRIGHT_WEBHOOK_CONCURRENCY": "2",
    "RUNWRIGHT_WEBHOOK_CONCURRENCY_PER_TENANT": "3",
    "RUNWRIGHT_WEBHOOK_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
    "RUNWRIGHT_WEBHOOK_POLL_SECONDS": "0.1",
}


class BlackHole:
    """A loopback listener that accepts every connection and never answers; ``accepted``
    counts the connections (one per delivery attempt: a silent one is never reused)."""

    def __init__(self) -> None:
        self.accepted = 0
        self.port = 0
        self._held: list[asyncio.StreamWriter] = []

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _hold(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._held.append(writer)  # kept open, unanswered, until the test ends


@contextlib.asynccontextmanager
async def black_hole() -> AsyncIterator[BlackHole]:
    hole = BlackHole()
    server = await asyncio.start_server(hole._hold, "127.0.0.1", 0)
    hole.port = int(server.sockets[0].getsockname()[1])
    try:
        yield hole
    finally:
        for writer in hole._held:
            writer.close()
        server.close()


async def tenant_app(http: httpx.AsyncClient) -> str:
    """Give the tenant behind ``http`` a webhook secret and an app; the app's id."""
    response = await http.post("/admin/webhooks/secret")
    assert response.status_code == 200, response.text
    return await create_app(http)


async def webhook_run(http: httpx.AsyncClient, app_id: str, url: str) -> str:
    body = {"input": "x", "engine": "scripted", "webhook": url}
    response = await http.post(f"/admin/apps/{app_id}/coding-agent/runs", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["run_id"])


async def completed(http: httpx.AsyncClient, app_id: str, run_ids: list[str]) -> bool:
    for run_id in run_ids:
        response = await http.get(f"/admin/apps/{app_id}/coding-agent/runs/{run_id}")
        if response.json()["status"] != "completed":
            return False
    return True


async def test_a_black_holing_tenant_does_not_delay_another(database_url: str, tmp_path: Path):
    async with (
        black_hole() as hole,
        webhook_receiver() as receiver,
        start_nodes(2, database_url=database_url, root=tmp_path, env=SETTINGS) as (a, b),
    ):
        noisy, quiet = await seed_owner(database_url), await seed_owner(database_url)
        async with a.http(noisy.headers) as noisy_http, b.http(quiet.headers) as quiet_http:
            noisy_app = await tenant_app(noisy_http)
            quiet_app = await tenant_app(quiet_http)
            noisy_runs = [await webhook_run(noisy_http, noisy_app, hole.url())
                          for _ in range(A_RUNS)]  # fmt: skip
            await until(lambda: completed(noisy_http, noisy_app, noisy_runs), within=WITHIN,
                        what="tenant A's runs completed")  # fmt: skip
            # A's cap of attempts hangs in the black hole; the rest of A's backlog is due.
            await until(lambda: hole.accepted >= 3, within=WITHIN, what="A's attempts began")

            started = time.monotonic()
            quiet_run = await webhook_run(quiet_http, quiet_app, receiver.url())
            [request] = await receiver.wait_for(1, within=WITHIN)
            waited = time.monotonic() - started
            deliveries = f"/admin/apps/{quiet_app}/coding-agent/runs/{quiet_run}/webhook-deliveries"

            async def delivered() -> bool:
                found = (await quiet_http.get(deliveries)).json()
                return [d["state"] for d in found] == ["delivered"]

            await until(delivered, within=WITHIN, what="B's delivery recorded delivered")
        logs = a.log_tail() + "\n" + b.log_tail()
    assert request.json()["run_id"] == quiet_run
    assert waited < BOUND_SECONDS, f"B's delivery took {waited:.1f} s\n{logs}"
    # Across both nodes (4 slots, 2 each), A never held more than its cap of 3.
    assert hole.accepted == 3, logs
