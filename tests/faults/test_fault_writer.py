"""The event writer against a real Postgres whose connections are terminated, and which is
stopped and started, while events pour in (issue 10, part 2 item 1): asyncpg raises
``InternalClientError`` ("cannot switch to state ..."), ``ConnectionDoesNotExistError``,
``AdminShutdownError`` and refused connections; the writer retries every batch until it is
written, never drops one, reports itself unhealthy meanwhile and recovers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from runtime.runs.broker import Broker
from runtime.runs.events import EventDraft, RunEvent, make_event
from runtime.runs.writer import EventWriter
from storage.database import Database
from storage.events import EventStore
from tests.support.cluster import DATABASE, Cluster

RUNS = 4
EVENTS_PER_RUN = 300


@pytest.fixture
async def db(cluster: Cluster) -> AsyncIterator[Database]:
    database = await Database.connect(cluster.dsn(DATABASE), min_size=1, max_size=4)
    try:
        yield database
    finally:
        await database.close()


async def _runs(cluster: Cluster) -> list[uuid.UUID]:
    """Run rows for the events' foreign key (a tenant, an app-less run each)."""
    tenant = uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(RUNS)]
    values = ", ".join(f"('{i}', '{tenant}', 'scripted')" for i in ids)
    await cluster.execute(
        f"INSERT INTO tenants (id, name, slug) VALUES ('{tenant}', 't', 't-{tenant.hex[:8]}');"
        f"INSERT INTO agent_runs (id, tenant_id, execution_engine) VALUES {values};",
        DATABASE,
    )
    return ids


def _event(run_id: uuid.UUID, seq: int) -> RunEvent:
    draft = EventDraft("assistant.delta", {"content": f"e{seq} "})
    return make_event(draft, run_id=run_id, app_id=uuid.uuid4(), seq=seq, ts=datetime.now(UTC))


async def _stored(cluster: Cluster, run_id: uuid.UUID) -> list[int]:
    rows = await cluster.fetchval(
        "SELECT coalesce(array_agg(seq ORDER BY seq), '{}') FROM run_events WHERE run_id = $1",
        run_id,
        database=DATABASE,
    )
    return list(rows)


async def test_the_writer_survives_terminate_sweeps_and_a_restart_without_losing_events(
    cluster: Cluster, db: Database
) -> None:
    run_ids = await _runs(cluster)
    writer = EventWriter(EventStore(db), Broker(queue_max=100_000, keepalive_seconds=60))
    await writer.start()
    saw_unhealthy = False
    try:
        for seq in range(1, EVENTS_PER_RUN + 1):
            stopping = seq == EVENTS_PER_RUN // 2
            if stopping:
                await cluster.stop("fast")
            writer.submit([_event(run_id, seq) for run_id in run_ids])
            if seq % 20 == 0:
                await cluster.terminate_backends(DATABASE)
                await asyncio.sleep(0.05)
                await cluster.terminate_backends(DATABASE)
            if stopping:
                for _ in range(400):  # the writer notices within a few retries
                    if writer.unhealthy_reason() is not None:
                        break
                    await asyncio.sleep(0.05)
                saw_unhealthy = writer.unhealthy_reason() == "retrying failed writes"
                await cluster.start()
            await asyncio.sleep(0.005)
        await asyncio.wait_for(writer.flush(), 120)
        assert writer.unhealthy_reason() is None
    finally:
        await writer.stop()
    assert saw_unhealthy, "the writer never reported the outage"
    for run_id in run_ids:
        assert await _stored(cluster, run_id) == list(range(1, EVENTS_PER_RUN + 1))
