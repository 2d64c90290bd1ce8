"""``GET /metrics`` through the app: its own token, and the numbers a real run moves
(scripted engine; native engine against the scripted OpenAI-compatible server)."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.api import create_app_via_api
from tests.support.fixtures_openai import dead_openai_url, scripted_openai  # noqa: F401
from tests.support.metrics import METRICS_TOKEN, metrics_headers, scrape, scrape_until, value
from tests.support.runs import LiveStream, create_run, read_stream, runs_url, wait_status
from tests.support.scripted_openai import ScriptedToolCall, text_reply, tool_call_reply

COMMAND = "true"  # an allowlisted command that exits 0 in the workspace


@pytest.fixture
def settings(make_settings):
    return make_settings(
        scripted_engine_enabled=True, metrics_token=METRICS_TOKEN, command_allowlist=(COMMAND,)
    )


# ---- auth --------------------------------------------------------------------------------


async def test_metrics_are_off_without_a_token(make_settings):
    from tests.support.api import running_app

    async with running_app(make_settings()) as (client, _):
        response = await client.get("/metrics", headers=metrics_headers())
        assert response.status_code == 404
        assert "RUNWRIGHT_METRICS_TOKEN" in (await response.get_json())["detail"]


async def test_metrics_need_their_own_bearer_token(client, owner):
    missing = await client.get("/metrics")
    assert missing.status_code == 401
    assert await missing.get_json() == {"detail": "Missing bearer token"}
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")

    wrong = await client.get("/metrics", headers=metrics_headers("x" * len(METRICS_TOKEN)))
    assert wrong.status_code == 401
    assert await wrong.get_json() == {"detail": "Invalid metrics token"}

    # A tenant's JWT (the owner's, valid for the admin API) is not a metrics token.
    tenant_jwt = await client.get("/metrics", headers=owner.headers)
    assert tenant_jwt.status_code == 401

    ok = await client.get("/metrics", headers=metrics_headers())
    assert ok.status_code == 200
    assert ok.headers["Content-Type"].startswith("text/plain")
    assert "runwright_database_up 1.0" in await ok.get_data(as_text=True)


async def test_metrics_speak_openmetrics_when_asked(client):
    response = await client.get(
        "/metrics",
        headers={**metrics_headers(), "Accept": "application/openmetrics-text; version=1.0.0"},
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert (await response.get_data(as_text=True)).rstrip().endswith("# EOF")


# ---- a scripted run ----------------------------------------------------------------------


async def test_a_scripted_run_moves_the_run_event_and_stream_metrics(client, owner):
    app, _ = await create_app_via_api(client, owner.headers)
    before = await scrape(client)
    script = [{"deltas": ["Hel", "lo"]}, {"sleep_ms": 300}, {"delta": "!"}]
    run = await create_run(client, app["id"], owner.headers, input="hi", engine="scripted",
                           script=script)  # fmt: skip
    url = runs_url(app["id"], f"/{run['run_id']}/stream")
    async with LiveStream(client, url, owner.headers) as stream:
        await stream.until(lambda events: len(events) >= 3)
        during = await scrape(client)
        assert value(during, "runwright_sse_subscribers") == 1
        await stream.until(lambda events: events[-1]["data"]["event"] == "run.completed")
    # The actor retires and the stream unsubscribes just after the terminal event.
    after = await scrape_until(
        client,
        lambda s: (
            value(s, "runwright_run_actors") == 0 and value(s, "runwright_sse_subscribers") == 0
        ),
    )

    labels = {"engine": "scripted"}
    assert value(after, "runwright_runs_created_total", labels) == (
        value(before, "runwright_runs_created_total", labels) + 1
    )
    done = {"engine": "scripted", "status": "completed"}
    assert value(after, "runwright_runs_finished_total", done) == 1
    assert value(after, "runwright_run_duration_seconds_count", done) == 1
    assert value(after, "runwright_run_duration_seconds_sum", done) >= 0.3  # the sleep step
    assert value(after, "runwright_run_first_delta_seconds_count", labels) == 1
    # The run's events went through the writer, except run.accepted (inserted with the run)
    # and the terminal event (written with the final status, in one transaction).
    assert value(after, "runwright_event_writer_batch_size_sum") >= 4
    assert value(after, "runwright_event_writer_lag_seconds_count") >= 1
    assert value(after, "runwright_event_writer_pending") == 0
    assert value(after, "runwright_run_actors") == 0
    assert value(after, "runwright_sse_subscribers") == 0


async def test_queue_depth_per_tenant_and_live_actors(make_settings):
    from tests.support.api import running_app

    settings = make_settings(
        scripted_engine_enabled=True, metrics_token=METRICS_TOKEN, max_live_runs=1
    )
    async with running_app(settings) as (client, services):
        owner = await _owner(services)
        app, _ = await create_app_via_api(client, owner.headers)
        # A second app is a second workspace: only the slot cap holds its run back.
        other_app, _ = await create_app_via_api(client, owner.headers)
        hanging = await create_run(client, app["id"], owner.headers, input="a",
                                   engine="scripted", script=[{"hang": True}])  # fmt: skip
        await wait_status(client, app["id"], hanging["run_id"], owner.headers, {"running"})
        waiting = await create_run(client, other_app["id"], owner.headers, input="b",
                                   engine="scripted", script=[{"delta": "x"}])  # fmt: skip
        tenant = {"tenant_id": str(owner.tenant_id)}
        metrics = await _scrape_until(client, lambda m: value(m, "runwright_runs_waiting") == 1)
        assert value(metrics, "runwright_queue_depth", tenant) == 1
        assert value(metrics, "runwright_runs", {"status": "queued", "engine": "scripted"}) == 1
        assert value(metrics, "runwright_runs", {"status": "running", "engine": "scripted"}) == 1
        assert value(metrics, "runwright_run_actors") == 1
        assert value(metrics, "runwright_runs_executing") == 1

        cancel = await client.post(
            runs_url(app["id"], f"/{hanging['run_id']}/cancel"), headers=owner.headers
        )
        assert cancel.status_code == 200
        await wait_status(client, other_app["id"], waiting["run_id"], owner.headers,
                          {"completed"})  # fmt: skip
        metrics = await _scrape_until(client, lambda m: value(m, "runwright_run_actors") == 0)
        assert value(metrics, "runwright_queue_depth", tenant) == 0  # the series is gone
        assert value(metrics, "runwright_runs_waiting") == 0
        cancelled = {"engine": "scripted", "status": "cancelled"}
        assert value(metrics, "runwright_runs_finished_total", cancelled) == 1


async def _owner(services):
    from tests.support.seed import Seeder

    return await Seeder(services.db, services.jwt_secret).tenant_admin(role="owner")


async def _scrape_until(client, predicate, within: float = 20.0):
    """Scrape until ``predicate(metrics)`` holds (the Supervisor updates its gauges after
    it handled a message, a moment after the HTTP answer)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        metrics = await scrape(client)
        if predicate(metrics) or asyncio.get_running_loop().time() > deadline:
            return metrics
        await asyncio.sleep(0.02)


# ---- a native run ------------------------------------------------------------------------


async def test_a_native_run_moves_the_model_token_and_command_metrics(
    client,
    owner,
    native_app,
    scripted_openai,  # noqa: F811
):
    app, _ = native_app
    scripted_openai.push(
        tool_call_reply(ScriptedToolCall("coding_agent_run_targeted_tests", {"command": COMMAND})),
        text_reply("Tests pass.", chunk_size=3),
    )
    run = await create_run(client, app["id"], owner.headers, input="Run the tests")
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    assert events[-1]["data"]["event"] == "run.completed"
    tool = next(e for e in events if e["data"]["event"] == "tool.completed")
    assert tool["data"]["payload"]["output"]["ok"] is True, tool

    done = {"engine": "native", "status": "completed"}
    # The actor counts the run just after its terminal event is stored.
    metrics = await scrape_until(client, lambda m: value(m, "runwright_runs_finished_total", done))
    assert value(metrics, "runwright_model_request_seconds_count", {"outcome": "ok"}) == 2
    assert value(metrics, "runwright_model_first_token_seconds_count") == 2
    # The scripted server reports usage when asked (stream_options.include_usage).
    assert all(r.body.get("stream_options") == {"include_usage": True}
               for r in scripted_openai.requests)  # fmt: skip
    assert value(metrics, "runwright_model_tokens_total", {"kind": "prompt"}) > 0
    assert value(metrics, "runwright_model_tokens_total", {"kind": "completion"}) > 0
    # The allowlisted command ran in the sandbox; its duration is recorded once.
    ok = {"command": COMMAND, "outcome": "ok"}
    assert value(metrics, "runwright_command_duration_seconds_count", ok) == 1
    native = {"engine": "native"}
    assert value(metrics, "runwright_run_first_delta_seconds_count", native) == 1
    assert value(metrics, "runwright_runs_finished_total", done) == 1


async def test_a_model_endpoint_that_is_down_counts_as_a_model_error(
    client,
    owner,
    make_model,
    dead_openai_url,  # noqa: F811
):
    await make_model(owner.tenant_id, default=True, base_url=dead_openai_url)
    app, _ = await create_app_via_api(client, owner.headers)
    run = await create_run(client, app["id"], owner.headers, input="hello")
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    assert events[-1]["data"]["event"] == "run.failed"

    failed = {"engine": "native", "status": "failed"}
    metrics = await scrape_until(
        client, lambda m: value(m, "runwright_runs_finished_total", failed)
    )
    assert value(metrics, "runwright_model_errors_total", {"kind": "connection"}) == 1
    assert value(metrics, "runwright_model_request_seconds_count", {"outcome": "error"}) == 1
    assert value(metrics, "runwright_runs_finished_total", failed) == 1
