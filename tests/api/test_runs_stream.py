"""The SSE stream: framing, envelopes, terminal sequences, replay and resume
(contract section 3; docs/design.md section 4 and 8.2; contract section 10 scenarios 11-15)."""

from __future__ import annotations

import asyncio

from runtime.assistant_text import CAPABILITIES_REPLY, DEFAULT_REPLY, GREETING_REPLY
from tests.support.runs import (
    LiveStream,
    create_run,
    read_stream,
    runs_url,
    types,
    wait_status,
)

TEN_CHUNKS = [{"deltas": [f"chunk-{i} " for i in range(10)]}]


async def test_stream_bytes_follow_the_wire_format(client, owner, app_and_draft):
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=[{"delta": "Hello"}])  # fmt: skip
    response = await client.get(runs_url(app["id"], f"/{run['run_id']}/stream"),
                                headers=owner.headers)  # fmt: skip
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    # Contract 1.5's no-cache, plus no-store on every authenticated response (issue 9).
    assert response.headers["Cache-Control"] == "no-cache, no-store"
    assert response.headers["X-Accel-Buffering"] == "no"
    body = await response.get_data(as_text=True)
    assert body.startswith(": " + " " * 2048 + "\n\n")
    assert 'id: 1\ndata: {"event": "run.accepted", "run_id": "' in body
    assert 'data: {"event": "run.completed"' in body
    assert body.endswith("}\n\n")
    frames = body.split("\n\n")[1:-1]
    assert all(f.startswith("id: ") and "\ndata: {" in f for f in frames)


async def test_envelope_fields_and_seq(client, owner, app_and_draft):
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=[{"delta": "Hi"}, {"plan": {"step": 1}}])  # fmt: skip
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    for index, event in enumerate(events, start=1):
        data = event["data"]
        assert list(data) == ["event", "run_id", "app_id", "seq", "ts", "stage", "payload",
                              "diagnostics"]  # fmt: skip
        assert event["id"] == data["seq"] == index
        assert data["run_id"] == run["run_id"] and data["app_id"] == app["id"]
        assert data["ts"].endswith("+00:00")
    assert types(events) == ["run.accepted", "plan.updated", "assistant.delta", "plan.updated",
                             "run.completed"]  # fmt: skip
    assert events[0]["data"]["payload"] == {"status": "queued",
                                            "surface": "published_app_coding_agent"}  # fmt: skip
    assert events[1]["data"]["payload"] == {"summary": "Coding-agent run started"}
    final = events[-1]["data"]["payload"]
    assert final["status"] == "completed" and final["run_id"] == run["run_id"]


async def test_final_output_becomes_assistant_text_when_no_tokens(client, owner, app_and_draft):
    app, _ = app_and_draft
    run = await create_run(
        client, app["id"], owner.headers, input="x", engine="scripted",
        script=[{"complete": {"last_agent_output": "Hello from final output"}}],
    )  # fmt: skip
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    assert types(events)[-2:] == ["assistant.delta", "run.completed"]
    assert events[-2]["data"]["payload"] == {"content": "Hello from final output"}


async def test_prompt_aware_fallback_texts(client, owner, app_and_draft):
    app, _ = app_and_draft
    cases = (
        ("what can you do?", CAPABILITIES_REPLY),
        (" Hello ", GREETING_REPLY),
        ("Fix the login bug", DEFAULT_REPLY),
    )
    for prompt, expected in cases:
        run = await create_run(client, app["id"], owner.headers, input=prompt, engine="scripted")
        _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
        deltas = [e["data"]["payload"]["content"] for e in events
                  if e["data"]["event"] == "assistant.delta"]  # fmt: skip
        assert deltas == [expected]
    assert "inspect and edit files" in CAPABILITIES_REPLY


async def test_no_fallback_when_text_was_streamed(client, owner, app_and_draft):
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="hi", engine="scripted",
                           script=[{"delta": "Streamed"}])  # fmt: skip
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    deltas = [e for e in events if e["data"]["event"] == "assistant.delta"]
    assert [d["data"]["payload"]["content"] for d in deltas] == ["Streamed"]


async def test_engine_exception_fails_the_run_with_its_message(client, owner, app_and_draft):
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=[{"delta": "a"}, {"raise": "Upstream unavailable"}])  # fmt: skip
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    last = events[-1]["data"]
    assert last["event"] == "run.failed"
    assert last["diagnostics"][0]["message"] == "Upstream unavailable"
    assert last["payload"]["status"] == "failed"
    got = await client.get(runs_url(app["id"], f"/{run['run_id']}"), headers=owner.headers)
    stored = await got.get_json()
    assert stored["status"] == "failed" and "Upstream unavailable" in stored["error"]
    assert stored["completed_at"] is not None


async def test_engine_failure_result_fails_the_run(client, owner, app_and_draft):
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=[{"fail": "model refused"}])  # fmt: skip
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    assert types(events)[-1] == "run.failed"
    assert events[-1]["data"]["diagnostics"] == [{"message": "model refused"}]
    assert sum(t == "run.failed" for t in types(events)) == 1


async def test_tool_failure_is_enriched(client, owner, app_and_draft):
    app, _ = app_and_draft
    failing = {
        "error": "Patch hunk mismatch", "code": "PATCH_HUNK_MISMATCH",
        "result": {"code": "PATCH_HUNK_MISMATCH"},
        "failures": [{"path": "src/App.tsx", "recommended_refresh": {"start_line": 10,
                                                                      "end_line": 40}}],
    }  # fmt: skip
    run = await create_run(
        client, app["id"], owner.headers, input="x", engine="scripted",
        script=[{"tool": "coding_agent_apply_patch", "input": {"patch": "p"}, "output": failing}],
    )  # fmt: skip
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    failed = next(e["data"] for e in events if e["data"]["event"] == "tool.failed")
    assert failed["stage"] == "tool"
    assert failed["payload"]["tool"] == "coding_agent_apply_patch"
    assert failed["payload"]["output"] == failing
    diag = failed["diagnostics"][0]
    assert diag["code"] == "PATCH_HUNK_MISMATCH"
    assert diag["patch_failure_count"] == 1
    assert diag["recommended_refresh"]["path"] == "src/App.tsx"


async def test_finished_run_replays_everything_and_ends(client, owner, app_and_draft):
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=TEN_CHUNKS)  # fmt: skip
    first_text, first = await read_stream(client, app["id"], run["run_id"], owner.headers)
    again_text, again = await read_stream(client, app["id"], run["run_id"], owner.headers)
    assert again_text == first_text  # byte-identical replay
    assert types(first)[-1] == "run.completed"


async def test_resume_after_last_event_id_has_no_gap_or_duplicate(client, owner, app_and_draft):
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=TEN_CHUNKS + [{"plan": {"p": 1}}])  # fmt: skip
    _, full = await read_stream(client, app["id"], run["run_id"], owner.headers)
    for cursor in (1, 3, len(full) - 1):
        _, rest = await read_stream(client, app["id"], run["run_id"], owner.headers, after=cursor)
        assert [e["id"] for e in rest] == list(range(cursor + 1, len(full) + 1))
    _, none = await read_stream(client, app["id"], run["run_id"], owner.headers, after=len(full))
    assert none == []
    url = runs_url(app["id"], f"/{run['run_id']}/stream?after=2")
    body = await (await client.get(url, headers=owner.headers)).get_data(as_text=True)
    assert body.count("id: 3\n") == 1 and "id: 2\n" not in body


async def test_bad_last_event_id_is_422(client, owner, app_and_draft):
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted")
    url = runs_url(app["id"], f"/{run['run_id']}/stream")
    for header in ("abc", "-3"):
        response = await client.get(url, headers={**owner.headers, "Last-Event-ID": header})
        assert response.status_code == 422
    response = await client.get(url + "?after=x", headers=owner.headers)
    assert response.status_code == 422


async def test_live_reconnect_resumes_exactly_after_the_last_id(client, owner, app_and_draft):
    app, _ = app_and_draft
    script = [{"delta": f"d{i}", "delay_ms": 30} for i in range(12)]
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=script)  # fmt: skip
    url = runs_url(app["id"], f"/{run['run_id']}/stream")
    async with LiveStream(client, url, owner.headers) as first:
        seen = await first.until(lambda ev: len(ev) >= 4)
    last_id = seen[-1]["id"]
    async with LiveStream(client, url, {**owner.headers, "Last-Event-ID": str(last_id)}) as again:
        rest = await again.until(lambda ev: ev and ev[-1]["data"]["event"] == "run.completed")
    ids = [e["id"] for e in seen] + [e["id"] for e in rest]
    assert ids == list(range(1, len(ids) + 1))
    assert rest[0]["id"] == last_id + 1


async def test_two_subscribers_see_identical_sequences(client, owner, app_and_draft):
    app, _ = app_and_draft
    script = [{"delta": f"d{i}", "delay_ms": 10} for i in range(20)]
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=script)  # fmt: skip
    one, two = await asyncio.gather(
        read_stream(client, app["id"], run["run_id"], owner.headers),
        read_stream(client, app["id"], run["run_id"], owner.headers),
    )
    assert [e["raw"] for e in one[1]] == [e["raw"] for e in two[1]]
    assert types(one[1])[-1] == "run.completed"


async def test_run_executes_in_the_background_without_any_stream(client, owner, app_and_draft):
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=[{"delta": "done"}])  # fmt: skip
    final = await wait_status(client, app["id"], run["run_id"], owner.headers, {"completed"})
    assert final["started_at"] is not None and final["completed_at"] is not None


async def test_client_disconnect_does_not_stop_the_run(client, owner, app_and_draft):
    app, _ = app_and_draft
    script = [{"delta": "a"}, {"sleep_ms": 200}, {"delta": "b"}]
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=script)  # fmt: skip
    url = runs_url(app["id"], f"/{run['run_id']}/stream")
    async with LiveStream(client, url, owner.headers) as stream:
        await stream.until(lambda ev: "assistant.delta" in types(ev))
    final = await wait_status(client, app["id"], run["run_id"], owner.headers, {"completed"})
    assert final["status"] == "completed"


async def test_three_concurrent_streams_execute_the_run_once(
    client, owner, app_and_draft, services
):
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=[{"delta": "once", "delay_ms": 50}])  # fmt: skip
    results = await asyncio.gather(
        *(read_stream(client, app["id"], run["run_id"], owner.headers) for _ in range(3))
    )
    for _, events in results:
        assert types(events).count("plan.updated") == 1
        assert types(events)[-1] == "run.completed"
    journal = services.runs.engines["scripted"].journal
    assert [what for rid, what in journal if str(rid) == run["run_id"]] == ["started"]
