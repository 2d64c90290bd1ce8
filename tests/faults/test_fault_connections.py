"""``pg_terminate_backend`` sweeps and a Postgres stop/start while runs stream (issue 10,
part 2 items 1, 3 and 7): asyncpg then raises ``InternalClientError`` ("cannot switch to
state ..."), ``ConnectionDoesNotExistError`` and refused connections; the event writer and
the runs retry until Postgres answers, and every run ends once with its whole text."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.api import create_app_via_api
from tests.support.cluster import DATABASE, Cluster
from tests.support.faults import assert_log_intact, final_log, wait_settled
from tests.support.runs import create_run

RUNS = 5
CHUNKS = [f"chunk-{i:02d} " for i in range(60)]
SETTLE_WITHIN = 180.0  # seconds: a loaded 2-core machine, back-off up to 5 s


def _script() -> list[dict[str, Any]]:
    return [{"delta": chunk, "delay_ms": 25} for chunk in CHUNKS]


async def _start_runs(client: Any, owner: Any) -> list[str]:
    run_ids = []
    for _ in range(RUNS):
        app, _ = await create_app_via_api(client, owner.headers)
        run = await create_run(client, app["id"], owner.headers, input="stream",
                               engine="scripted", script=_script())  # fmt: skip
        run_ids.append(run["run_id"])
    return run_ids


async def _check(cluster: Cluster, run_ids: list[str]) -> None:
    dsn = cluster.dsn(DATABASE)
    statuses = await wait_settled(dsn, run_ids, within=SETTLE_WITHIN)
    assert set(statuses.values()) == {"completed"}, statuses
    for run_id in run_ids:
        assert_log_intact(await final_log(dsn, run_id), text="".join(CHUNKS))


async def test_terminate_sweeps_lose_no_event_and_repeat_no_text(
    cluster: Cluster, client: Any, owner: Any
) -> None:
    run_ids = await _start_runs(client, owner)
    killed = 0
    for _ in range(8):  # two sweeps 50 ms apart, every 250 ms, for about 2 s
        killed += await cluster.terminate_backends(DATABASE)
        await asyncio.sleep(0.05)
        killed += await cluster.terminate_backends(DATABASE)
        await asyncio.sleep(0.2)
    assert killed > 0, "no connection was terminated: the test injected nothing"
    await _check(cluster, run_ids)
    ready = await client.get("/readyz")
    assert ready.status_code == 200, await ready.get_data(as_text=True)


async def test_postgres_stop_and_start_mid_run_loses_nothing(
    cluster: Cluster, client: Any, owner: Any
) -> None:
    """Postgres stopped (fast) for two seconds while five runs stream, then started: the
    writer and the actors wait for it, and every run completes once with its whole text."""
    run_ids = await _start_runs(client, owner)
    await asyncio.sleep(0.3)  # the runs are streaming
    await cluster.stop("fast")
    await asyncio.sleep(2.0)  # down long enough for every run to hit it
    await cluster.start()
    await _check(cluster, run_ids)
