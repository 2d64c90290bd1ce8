"""Postgres stopped under a serving app (issue 10, part 2 items 3 and 6): every request
that needs the database answers 503 with ``Retry-After`` and a ``DATABASE_UNAVAILABLE``
detail (never a 500), ``/readyz`` turns red and ``/livez`` stays green, and once Postgres is
back everything works again without restarting the app."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.api import create_app_via_api
from tests.support.cluster import Cluster
from tests.support.runs import create_run, read_stream, runs_url, types

WITHIN = 60.0  # seconds for a state change to show (a loaded 2-core machine)


async def _until_status(client: Any, path: str, status: int, failing: str | None = None) -> Any:
    """Poll ``path`` until it answers ``status`` (and, with ``failing``, until that
    readiness check reports a failure: several checks notice an outage, each on its own
    schedule, e.g. the listener's connection before the database probe)."""
    deadline = asyncio.get_running_loop().time() + WITHIN
    while True:
        response = await client.get(path)
        if response.status_code == status and (
            failing is None
            or (await response.get_json())["detail"]["checks"].get(failing, "ok") != "ok"
        ):
            return response
        assert asyncio.get_running_loop().time() < deadline, (
            f"{path} stayed {response.status_code}: {await response.get_data(as_text=True)}"
        )
        await asyncio.sleep(0.05)


def _assert_unavailable(response: Any, body: Any) -> None:
    assert response.status_code == 503, body
    assert response.headers["Retry-After"] == "2"
    assert body["detail"]["code"] == "DATABASE_UNAVAILABLE"
    assert "Retry-After" in body["detail"]["message"]


async def test_requests_answer_503_while_postgres_is_down_and_work_once_it_is_back(
    cluster: Cluster, client: Any, owner: Any
) -> None:
    app, _ = await create_app_via_api(client, owner.headers)
    done = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                            script=[{"delta": "before"}])  # fmt: skip
    _, events = await read_stream(client, app["id"], done["run_id"], owner.headers, within=WITHIN)
    assert types(events)[-1] == "run.completed"
    assert (await client.get("/readyz")).status_code == 200

    await cluster.stop("fast")

    requests = [
        ("GET", f"/admin/apps/{app['id']}", None),
        ("GET", runs_url(app["id"]), None),
        ("GET", runs_url(app["id"], f"/{done['run_id']}"), None),
        ("GET", runs_url(app["id"], f"/{done['run_id']}/stream"), None),
        ("POST", runs_url(app["id"]), {"input": "y", "engine": "scripted", "script": []}),
        ("POST", runs_url(app["id"], f"/{done['run_id']}/cancel"), None),
    ]
    for method, path, body in requests:
        response = await client.open(path, method=method, json=body, headers=owner.headers)
        _assert_unavailable(response, await response.get_json())

    not_ready = await _until_status(client, "/readyz", 503, failing="database")
    detail = (await not_ready.get_json())["detail"]
    assert detail["code"] == "NOT_READY" and detail["checks"]["database"] != "ok"
    assert not_ready.headers["Retry-After"] == "2"
    assert (await client.get("/healthz")).status_code == 503
    live = await client.get("/livez")
    assert (live.status_code, await live.get_json()) == (200, {"status": "ok"})

    await cluster.start()

    await _until_status(client, "/readyz", 200)
    assert await (await client.get("/healthz")).get_json() == {"status": "ok", "database": "ok"}
    # The pool replaces its dead connections by itself: the same app serves again.
    deadline = asyncio.get_running_loop().time() + WITHIN
    while True:
        response = await client.post(
            runs_url(app["id"]), headers=owner.headers,
            json={"input": "z", "engine": "scripted", "script": [{"delta": "after"}]},
        )  # fmt: skip
        if response.status_code == 200:
            break
        _assert_unavailable(response, await response.get_json())
        assert asyncio.get_running_loop().time() < deadline, "creates kept failing"
        await asyncio.sleep(0.1)
    run = await response.get_json()
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers, within=WITHIN)
    assert types(events)[-1] == "run.completed"
    assert [e["data"]["payload"]["content"] for e in events
            if e["data"]["event"] == "assistant.delta"] == ["after"]  # fmt: skip
