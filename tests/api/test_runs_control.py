"""Cancel, resume, the execution cap, actor crashes and process restarts
(contract 1.6-1.7; docs/design.md 3, 8.3, 8.4, 8.12; contract section 10 scenarios 16-17)."""

from __future__ import annotations

import asyncio
import uuid

from runtime.engine import CancelOutcome
from storage.runs import RunStore
from tests.support.fake_engines import FakeOpenCodeEngine
from tests.support.runs import LiveStream, create_run, read_stream, runs_url, types, wait_status


async def cancel(client, app_id, run_id, headers):
    response = await client.post(runs_url(app_id, f"/{run_id}/cancel"), headers=headers)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await response.get_json()


async def test_cancel_during_a_slow_run_stops_the_engine_first(
    client, owner, app_and_draft, services
):
    app, _ = app_and_draft
    script = [{"delta": "started"}, {"sleep_ms": 30000}, {"delta": "too late"}]
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=script)  # fmt: skip
    url = runs_url(app["id"], f"/{run['run_id']}/stream")
    async with LiveStream(client, url, owner.headers) as stream:
        await stream.until(lambda ev: "assistant.delta" in types(ev))
        cancelled = await cancel(client, app["id"], run["run_id"], owner.headers)
        # the answer comes after the engine observed its cancellation
        journal = services.runs.engines["scripted"].journal
        assert (uuid.UUID(run["run_id"]), "cancelled") in journal
        events = await stream.until(lambda ev: types(ev)[-1] in ("run.failed", "run.completed"))
    assert cancelled["status"] == "cancelled"
    assert cancelled["completed_at"] is not None and cancelled["error"] is None
    assert types(events)[-1] == "run.failed"
    assert events[-1]["data"]["diagnostics"] == [{"message": "run cancelled"}]
    assert events[-1]["data"]["payload"]["status"] == "cancelled"
    assert not any(e["data"]["payload"].get("content") == "too late" for e in events)
    await asyncio.sleep(0.2)
    final = await wait_status(client, app["id"], run["run_id"], owner.headers, {"cancelled"})
    assert final["status"] == "cancelled"


async def test_cancel_of_a_finished_run_is_idempotent(client, owner, app_and_draft):
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted")
    done = await wait_status(client, app["id"], run["run_id"], owner.headers, {"completed"})
    again = await cancel(client, app["id"], run["run_id"], owner.headers)
    assert again == done
    twice = await cancel(client, app["id"], run["run_id"], owner.headers)
    assert twice == done


async def test_cancel_twice_while_running(client, owner, app_and_draft):
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=[{"hang": True}])  # fmt: skip
    await wait_status(client, app["id"], run["run_id"], owner.headers, {"running"})
    first, second = await asyncio.gather(
        cancel(client, app["id"], run["run_id"], owner.headers),
        cancel(client, app["id"], run["run_id"], owner.headers),
    )
    assert first["status"] == second["status"] == "cancelled"
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    assert types(events).count("run.failed") == 1


async def test_late_engine_completion_does_not_overwrite_cancel(client, owner, app_and_draft):
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=[{"sleep_ms": 150}, {"delta": "late"}])  # fmt: skip
    await wait_status(client, app["id"], run["run_id"], owner.headers, {"running"})
    await cancel(client, app["id"], run["run_id"], owner.headers)
    await asyncio.sleep(0.4)
    final = await wait_status(client, app["id"], run["run_id"], owner.headers, {"cancelled"})
    assert final["status"] == "cancelled"


async def test_resume_hands_the_payload_to_the_engine(client, owner, app_and_draft, db):
    app, _ = app_and_draft
    script = [{"delta": "before"}, {"pause": {"waiting_for": "approval"}}, {"delta": "after"}]
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=script)  # fmt: skip
    _, first = await read_stream(client, app["id"], run["run_id"], owner.headers)
    assert types(first)[-1] == "run.completed"  # a pause ends the stream (contract 3.3)
    assert first[-1]["data"]["payload"]["status"] == "paused"
    paused = await wait_status(client, app["id"], run["run_id"], owner.headers, {"paused"})
    assert paused["completed_at"] is None

    url = runs_url(app["id"], f"/{run['run_id']}/resume")
    response = await client.post(url, json={"payload": {"decision": "continue"}},
                                 headers=owner.headers)  # fmt: skip
    assert response.status_code == 200
    resumed = await response.get_json()
    assert resumed["run_id"] == run["run_id"] and resumed["status"] in ("queued", "running")
    stored = await RunStore(db).get(uuid.UUID(run["run_id"]))
    assert stored["resume_payload"] == {"decision": "continue"}

    _, rest = await read_stream(client, app["id"], run["run_id"], owner.headers,
                                after=first[-1]["id"])  # fmt: skip
    assert rest[0]["data"]["event"] == "plan.updated"
    plans = [e["data"]["payload"] for e in rest if e["data"]["event"] == "plan.updated"]
    assert {"resumed_with": {"decision": "continue"}} in plans
    contents = [e["data"]["payload"].get("content") for e in rest]
    assert "after" in contents and "before" not in contents
    assert rest[-1]["data"]["payload"]["status"] == "completed"


async def test_resume_of_a_run_that_is_not_paused_is_409(client, owner, app_and_draft):
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=[{"hang": True}])  # fmt: skip
    await wait_status(client, app["id"], run["run_id"], owner.headers, {"running"})
    url = runs_url(app["id"], f"/{run['run_id']}/resume")
    response = await client.post(url, json={"payload": {}}, headers=owner.headers)
    assert response.status_code == 409
    assert await response.get_json() == {"detail": "Run is not paused"}
    missing = await client.post(url, headers=owner.headers)
    assert missing.status_code == 422
    assert (await cancel(client, app["id"], run["run_id"], owner.headers))["status"] == "cancelled"


async def test_cancel_of_a_paused_run(client, owner, app_and_draft):
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=[{"pause": {}}])  # fmt: skip
    await wait_status(client, app["id"], run["run_id"], owner.headers, {"paused"})
    assert (await cancel(client, app["id"], run["run_id"], owner.headers))["status"] == "cancelled"


async def test_unconfirmed_engine_cancel_fails_the_run_closed(
    client, owner, app_and_draft, services, make_model
):
    app, _ = app_and_draft
    await make_model(owner.tenant_id, default=True)
    engine = FakeOpenCodeEngine(
        hang=True,
        cancel_outcome=CancelOutcome(
            False,
            [{"code": "OPENCODE_CANCEL_UNCONFIRMED",
              "message": "OpenCode cancellation not confirmed"}],
        ),
    )  # fmt: skip
    services.runs.engines["opencode"] = engine
    run = await create_run(client, app["id"], owner.headers, input="x", engine="opencode")
    await wait_status(client, app["id"], run["run_id"], owner.headers, {"running"})
    result = await cancel(client, app["id"], run["run_id"], owner.headers)
    assert engine.cancel_calls == 1
    assert result["status"] == "failed"
    assert "not confirmed" in result["error"]
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    assert events[-1]["data"]["diagnostics"][0]["code"] == "OPENCODE_CANCEL_UNCONFIRMED"


async def test_opencode_engine_exception_fails_closed(
    client, owner, app_and_draft, services, make_model
):
    app, _ = app_and_draft
    await make_model(owner.tenant_id, default=True)
    services.runs.engines["opencode"] = FakeOpenCodeEngine(
        raise_message="OpenCode upstream unavailable"
    )
    run = await create_run(client, app["id"], owner.headers, input="x", engine="opencode")
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    assert events[-1]["data"]["event"] == "run.failed"
    assert "OpenCode upstream unavailable" in events[-1]["data"]["diagnostics"][0]["message"]
    final = await wait_status(client, app["id"], run["run_id"], owner.headers, {"failed"})
    assert "OpenCode upstream unavailable" in final["error"]


async def test_a_run_failed_elsewhere_gets_no_second_terminal_event(
    client, owner, app_and_draft, db, services
):
    """If another process reconciled the run while it executed here, the late engine
    result neither overwrites the status nor adds a terminal event (docs/design.md 8.3)."""
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=[{"sleep_ms": 300}, {"delta": "late"}])  # fmt: skip
    await wait_status(client, app["id"], run["run_id"], owner.headers, {"running"})
    run_id = uuid.UUID(run["run_id"])
    token = (await RunStore(db).get(run_id))["claim_token"]  # as a reconciling node reads it
    failed = await RunStore(db).finish(
        run_id, "failed", expected=["running"], token=token, error="elsewhere"
    )
    assert failed is not None
    await asyncio.sleep(0.8)  # the engine finishes its 300 ms script and the actor ends
    assert (run_id, "started") in services.runs.engines["scripted"].journal
    events = await services.runs.events.read_from(run_id, 1)
    assert [e.type for e in events if e.type in ("run.completed", "run.failed")] == []
    final = await RunStore(db).get(run_id)
    assert final["status"] == "failed" and final["error_message"] == "elsewhere"


async def test_a_cancel_racing_a_resume_never_answers_a_running_run(client, owner, app_and_draft):
    """Resume and cancel of one paused run sent at once: a cancel that answers 200 has
    settled the run (contract 1.7: it answers once the engine stopped), and the run stays
    as the cancel left it. Before, a cancel whose read of the run came after this node's
    claim round had claimed the resumed run answered ``running`` and cancelled nothing
    (the run went on and completed)."""
    app, _ = app_and_draft
    script = [{"pause": {}}, {"sleep_ms": 1500}, {"delta": "resumed"}]
    for _ in range(8):
        run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                               script=script)  # fmt: skip
        await wait_status(client, app["id"], run["run_id"], owner.headers, {"paused"})
        resume = runs_url(app["id"], f"/{run['run_id']}/resume")
        *resumed, cancelled = await asyncio.gather(
            *(client.post(resume, json={"payload": {}}, headers=owner.headers) for _ in range(3)),
            client.post(runs_url(app["id"], f"/{run['run_id']}/cancel"), headers=owner.headers),
        )  # fmt: skip
        assert {r.status_code for r in resumed} <= {200, 409, 503}
        assert cancelled.status_code == 200, await cancelled.get_data(as_text=True)
        answer = await cancelled.get_json()
        assert answer["status"] == "cancelled", answer["status"]
        final = await wait_status(
            client, app["id"], run["run_id"], owner.headers, {"completed", "failed", "cancelled"}
        )
        assert final["status"] == "cancelled"


async def test_a_run_without_a_workspace_is_final_only_with_its_engine_result(
    client, owner, app_and_draft, db
):
    # Exactly once (issue 10): its status statement records the engine's result, so a
    # reconcile or take-over of the run would find it (no separate record for such runs).
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=[{"delta": "hello"}])  # fmt: skip
    await wait_status(client, app["id"], run["run_id"], owner.headers, {"completed"})
    row = await RunStore(db).get(uuid.UUID(run["run_id"]))
    assert row["status"] == "completed"
    assert row["engine_outcome"]["kind"] == "completed"
    assert row["engine_outcome"]["saw_text"] is True
    assert row["engine_outcome"]["output"] == row["output_result"]
