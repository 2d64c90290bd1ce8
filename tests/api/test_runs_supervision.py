"""The Supervisor: the execution cap, crashed actors, and runs a dead process left behind
(docs/design.md sections 2-3 and 8.12)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from storage.runs import RunStore
from tests.support.api import create_app_via_api, running_app
from tests.support.runs import create_run, read_stream, runs_url, types, wait_status
from tests.support.seed import Seeder


@pytest.fixture
def settings(make_settings):
    return make_settings(scripted_engine_enabled=True, max_live_runs=2, max_actor_restarts=2)


async def test_runs_over_the_cap_wait_queued_and_start_in_order(client, owner, app_and_draft):
    app, _ = app_and_draft
    hang = [{"hang": True}]
    first = await create_run(client, app["id"], owner.headers, input="1", engine="scripted",
                             script=hang)  # fmt: skip
    second = await create_run(client, app["id"], owner.headers, input="2", engine="scripted",
                              script=hang)  # fmt: skip
    third = await create_run(client, app["id"], owner.headers, input="3", engine="scripted",
                             script=[{"delta": "third"}])  # fmt: skip
    await wait_status(client, app["id"], first["run_id"], owner.headers, {"running"})
    await wait_status(client, app["id"], second["run_id"], owner.headers, {"running"})
    await asyncio.sleep(0.3)
    waiting = await wait_status(client, app["id"], third["run_id"], owner.headers, {"queued"})
    assert waiting["started_at"] is None
    await client.post(runs_url(app["id"], f"/{first['run_id']}/cancel"), headers=owner.headers)
    done = await wait_status(client, app["id"], third["run_id"], owner.headers, {"completed"})
    assert done["status"] == "completed"
    await client.post(runs_url(app["id"], f"/{second['run_id']}/cancel"), headers=owner.headers)


async def test_cancel_of_a_queued_run_that_never_started(client, owner, app_and_draft):
    app, _ = app_and_draft
    hang = [{"hang": True}]
    blockers = [
        await create_run(
            client, app["id"], owner.headers, input=str(i), engine="scripted", script=hang
        )  # fmt: skip
        for i in range(2)
    ]
    queued = await create_run(client, app["id"], owner.headers, input="q", engine="scripted",
                              script=[{"delta": "never"}])  # fmt: skip
    for run in blockers:
        await wait_status(client, app["id"], run["run_id"], owner.headers, {"running"})
    response = await client.post(runs_url(app["id"], f"/{queued['run_id']}/cancel"),
                                 headers=owner.headers)  # fmt: skip
    cancelled = await response.get_json()
    assert cancelled["status"] == "cancelled" and cancelled["started_at"] is None
    _, events = await read_stream(client, app["id"], queued["run_id"], owner.headers)
    assert types(events) == ["run.accepted", "run.failed"]
    assert events[-1]["data"]["diagnostics"] == [{"message": "run cancelled"}]
    for run in blockers:  # a freed slot must not start the cancelled run
        await client.post(runs_url(app["id"], f"/{run['run_id']}/cancel"), headers=owner.headers)
    await asyncio.sleep(0.2)
    again = await client.get(runs_url(app["id"], f"/{queued['run_id']}"), headers=owner.headers)
    assert (await again.get_json())["status"] == "cancelled"


async def test_a_refused_resume_keeps_a_waiting_run_in_line(client, owner, app_and_draft):
    """A resume of a run waiting for a slot is refused (409) and must not drop the run from
    the Supervisor's queue: it still starts when a slot frees."""
    app, _ = app_and_draft
    hang = [{"hang": True}]
    blockers = [
        await create_run(
            client, app["id"], owner.headers, input=str(i), engine="scripted", script=hang
        )  # fmt: skip
        for i in range(2)
    ]
    waiting = await create_run(client, app["id"], owner.headers, input="w", engine="scripted",
                               script=[{"delta": "finally"}])  # fmt: skip
    for run in blockers:
        await wait_status(client, app["id"], run["run_id"], owner.headers, {"running"})
    response = await client.post(runs_url(app["id"], f"/{waiting['run_id']}/resume"),
                                 json={}, headers=owner.headers)  # fmt: skip
    assert response.status_code == 409
    await client.post(runs_url(app["id"], f"/{blockers[0]['run_id']}/cancel"),
                      headers=owner.headers)  # fmt: skip
    done = await wait_status(client, app["id"], waiting["run_id"], owner.headers, {"completed"})
    assert done["status"] == "completed"
    await client.post(runs_url(app["id"], f"/{blockers[1]['run_id']}/cancel"),
                      headers=owner.headers)  # fmt: skip


async def test_a_crashed_actor_is_restarted_and_the_run_finishes(client, owner, app_and_draft):
    app, _ = app_and_draft
    script = [{"delta": "one"}, {"crash_actor": True}, {"delta": "two"}]
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=script)  # fmt: skip
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    assert types(events)[-1] == "run.completed"
    plans = [e["data"]["payload"] for e in events if e["data"]["event"] == "plan.updated"]
    assert plans[-1] == {"summary": "Coding-agent run restarted", "attempt": 1}
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))


async def test_an_actor_crashing_past_the_limit_fails_the_run(
    client, owner, app_and_draft, services, monkeypatch
):
    app, _ = app_and_draft
    from runtime.engines import scripted

    # every attempt crashes: make the fault unconditional for this test
    original = scripted.ScriptedSession._step

    async def always_crash(self, step, position):
        if "crash_actor" in step:
            return [scripted.ActorFault()]
        return await original(self, step, position)

    monkeypatch.setattr(scripted.ScriptedSession, "_step", always_crash)
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=[{"crash_actor": True}])  # fmt: skip
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    assert types(events)[-1] == "run.failed"
    diag = events[-1]["data"]["diagnostics"][0]
    assert diag["code"] == "RUN_ACTOR_CRASHED"
    assert "crashed too many times" in diag["message"]
    final = await wait_status(client, app["id"], run["run_id"], owner.headers, {"failed"})
    assert "crashed too many times" in final["error"]


async def test_runs_left_running_are_reconciled_at_the_next_start(make_settings):
    settings = make_settings(scripted_engine_enabled=True)
    async with running_app(settings) as (client, first_services):
        owner = await Seeder(first_services.db, first_services.jwt_secret).tenant_admin()
        app, _ = await create_app_via_api(client, owner.headers)
        run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                               script=[{"hang": True}])  # fmt: skip
        await wait_status(client, app["id"], run["run_id"], owner.headers, {"running"})
    # the first process is gone and its run is still `running` in Postgres
    async with running_app(settings) as (client, second_services):
        final = await wait_status(client, app["id"], run["run_id"], owner.headers, {"failed"})
        assert "restarted" in final["error"]
        _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
        assert types(events)[-1] == "run.failed"
        assert events[-1]["data"]["diagnostics"][0]["code"] == "RUN_INTERRUPTED"
        stored = await RunStore(second_services.db).get(uuid.UUID(run["run_id"]))
        assert stored["lease_owner"] is None


async def test_requeue_policy_runs_an_interrupted_run_again(make_settings):
    settings = make_settings(scripted_engine_enabled=True, restart_policy="requeue")
    script = [{"delta": "first attempt"}, {"sleep_ms": 600}, {"delta": "finished"}]
    async with running_app(settings) as (client, first_services):
        owner = await Seeder(first_services.db, first_services.jwt_secret).tenant_admin()
        app, _ = await create_app_via_api(client, owner.headers)
        run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                               script=script)  # fmt: skip
        await wait_status(client, app["id"], run["run_id"], owner.headers, {"running"})
    async with running_app(settings) as (client, _):
        final = await wait_status(client, app["id"], run["run_id"], owner.headers, {"completed"})
        assert final["error"] is None
        _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
        plans = [e["data"]["payload"].get("summary") for e in events
                 if e["data"]["event"] == "plan.updated"]  # fmt: skip
        assert "Run requeued after a restart" in plans
        assert plans.count("Coding-agent run started") == 2
        assert [e["id"] for e in events] == list(range(1, len(events) + 1))


async def test_a_run_whose_lease_lapsed_on_another_node_is_reaped(make_settings):
    first_settings = make_settings(scripted_engine_enabled=True, node_id="node-a",
                                   lease_seconds=2.0)  # fmt: skip
    async with running_app(first_settings) as (client, first_services):
        owner = await Seeder(first_services.db, first_services.jwt_secret).tenant_admin()
        app, _ = await create_app_via_api(client, owner.headers)
        run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                               script=[{"hang": True}])  # fmt: skip
        await wait_status(client, app["id"], run["run_id"], owner.headers, {"running"})
    # node-a is gone; node-b does not own the run, so only the lapsed lease frees it
    second_settings = make_settings(scripted_engine_enabled=True, node_id="node-b",
                                    lease_seconds=2.0)  # fmt: skip
    async with running_app(second_settings) as (client, _):
        final = await wait_status(client, app["id"], run["run_id"], owner.headers, {"failed"},
                                  within=10)  # fmt: skip
        assert "restarted" in final["error"]


async def test_live_runs_keep_their_lease(make_settings):
    settings = make_settings(scripted_engine_enabled=True, lease_seconds=2.0)
    async with running_app(settings) as (client, services):
        owner = await Seeder(services.db, services.jwt_secret).tenant_admin()
        app, _ = await create_app_via_api(client, owner.headers)
        run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                               script=[{"sleep_ms": 3500}, {"delta": "done"}])  # fmt: skip
        final = await wait_status(client, app["id"], run["run_id"], owner.headers,
                                  {"completed", "failed"}, within=15)  # fmt: skip
        assert final["status"] == "completed", final["error"]
