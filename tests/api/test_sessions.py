"""Coding-agent sessions through the HTTP API (docs/design.md 10, issue 12 items 1 and 6): the
session routes, follow-ups that see the earlier turns and the earlier run's edit, and each
``multitask_strategy`` (reject, enqueue, interrupt, rollback), against real Postgres and,
for the native engine, the scripted OpenAI-compatible server on loopback."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from tests.support.api import create_app_via_api
from tests.support.openai_script import call
from tests.support.patches import heading_patch
from tests.support.runs import LiveStream, create_run, read_stream, runs_url, types, wait_status
from tests.support.scripted_openai import hang_reply, text_reply

PATCH = heading_patch("Session Chat")
PAUSE = [{"delta": "waiting"}, {"pause": {"why": "hold the session"}}, {"delta": " done"}]


def sessions_url(app_id: str, suffix: str = "") -> str:
    return f"/admin/apps/{app_id}/coding-agent/sessions{suffix}"


async def create_session(client: Any, app_id: str, headers: dict[str, str], **body: Any) -> Any:
    response = await client.post(sessions_url(app_id), json=body, headers=headers)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await response.get_json()


async def get_session(client: Any, app_id: str, session_id: str, headers: dict[str, str]) -> Any:
    response = await client.get(sessions_url(app_id, f"/{session_id}"), headers=headers)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await response.get_json()


# ---- the session routes ------------------------------------------------------------------


async def test_create_list_and_get_a_session_with_its_runs_in_order(client, owner, app_and_draft):
    app, _ = app_and_draft
    session = await create_session(client, app["id"], owner.headers, title="Dark mode")
    assert session["multitask_strategy"] == "reject"  # the default
    assert session["title"] == "Dark mode" and session["run_count"] == 0
    assert session["published_app_id"] == app["id"]
    assert session["created_by"] == str(owner.user_id)
    other = await create_session(client, app["id"], owner.headers, multitask_strategy="enqueue")

    listed = await client.get(sessions_url(app["id"]), headers=owner.headers)
    assert [s["session_id"] for s in await listed.get_json()] == [
        other["session_id"], session["session_id"]
    ]  # fmt: skip

    runs = []
    for prompt in ("first", "second"):
        run = await create_run(client, app["id"], owner.headers, input=prompt, engine="scripted",
                               session_id=session["session_id"])  # fmt: skip
        assert run["session_id"] == session["session_id"]
        runs.append(await wait_status(client, app["id"], run["run_id"], owner.headers,
                                      {"completed"}))  # fmt: skip
    plain = await create_run(client, app["id"], owner.headers, input="alone", engine="scripted")
    assert plain["session_id"] is None

    detail = await get_session(client, app["id"], session["session_id"], owner.headers)
    assert detail["run_count"] == 2
    assert [r["run_id"] for r in detail["runs"]] == [r["run_id"] for r in runs]
    assert [r["status"] for r in detail["runs"]] == ["completed", "completed"]


async def test_a_session_of_another_app_or_tenant_is_not_found(client, owner, seed, app_and_draft):
    app, _ = app_and_draft
    session = await create_session(client, app["id"], owner.headers)
    sid = session["session_id"]
    other_app, _ = await create_app_via_api(client, owner.headers)
    stranger = await seed.tenant_admin()
    stranger_app, _ = await create_app_via_api(client, stranger.headers)

    wrong_app = await client.get(sessions_url(other_app["id"], f"/{sid}"), headers=owner.headers)
    assert wrong_app.status_code == 404
    assert await wrong_app.get_json() == {"detail": "Coding-agent session not found"}
    foreign = await client.get(sessions_url(app["id"], f"/{sid}"), headers=stranger.headers)
    assert foreign.status_code == 404  # the app itself is not the stranger's
    assert await foreign.get_json() == {"detail": "Published app not found"}
    listed = await client.get(sessions_url(stranger_app["id"]), headers=stranger.headers)
    assert await listed.get_json() == []
    missing = await client.get(sessions_url(app["id"], f"/{uuid.uuid4()}"), headers=owner.headers)
    assert missing.status_code == 404

    for app_id, headers in ((other_app["id"], owner.headers),
                            (stranger_app["id"], stranger.headers)):  # fmt: skip
        response = await client.post(
            runs_url(app_id), json={"input": "x", "engine": "scripted", "session_id": sid},
            headers=headers,
        )  # fmt: skip
        assert response.status_code == 404
        assert await response.get_json() == {"detail": "Coding-agent session not found"}
    assert (await get_session(client, app["id"], sid, owner.headers))["run_count"] == 0


async def test_unknown_strategies_are_422(client, owner, app_and_draft):
    app, _ = app_and_draft
    bad = await client.post(sessions_url(app["id"]), json={"multitask_strategy": "bogus"},
                            headers=owner.headers)  # fmt: skip
    assert bad.status_code == 422
    assert (await bad.get_json())["detail"][0]["loc"] == ["body", "multitask_strategy"]
    session = await create_session(client, app["id"], owner.headers)
    for body in (
        {"session_id": session["session_id"], "multitask_strategy": "bogus"},
        {"multitask_strategy": "enqueue"},  # a strategy needs a session
    ):
        response = await client.post(runs_url(app["id"]), headers=owner.headers,
                                     json={"input": "x", "engine": "scripted", **body})  # fmt: skip
        assert response.status_code == 422, body
        assert (await response.get_json())["detail"][0]["loc"] == ["body", "multitask_strategy"]
    assert (await get_session(client, app["id"], session["session_id"], owner.headers))[
        "run_count"
    ] == 0
    # the session list takes `limit` only: a misspelt parameter is not silently ignored
    listed = await client.get(sessions_url(app["id"], "?limt=5"), headers=owner.headers)
    assert listed.status_code == 422
    assert (await listed.get_json())["detail"][0]["loc"] == ["query", "limt"]


# ---- multitask strategies ------------------------------------------------------------------


async def test_reject_refuses_a_second_run_while_one_is_active(client, owner, app_and_draft):
    app, _ = app_and_draft
    session = await create_session(client, app["id"], owner.headers)
    sid = session["session_id"]
    first = await create_run(client, app["id"], owner.headers, input="hold", engine="scripted",
                             script=PAUSE, session_id=sid)  # fmt: skip
    await wait_status(client, app["id"], first["run_id"], owner.headers, {"paused"})
    response = await client.post(
        runs_url(app["id"]), json={"input": "again", "engine": "scripted", "session_id": sid},
        headers=owner.headers,
    )  # fmt: skip
    assert response.status_code == 409
    detail = (await response.get_json())["detail"]
    assert detail["code"] == "SESSION_BUSY"
    assert detail["active_run_id"] == first["run_id"] and "paused" in detail["message"]
    detail_view = await get_session(client, app["id"], sid, owner.headers)
    assert [r["run_id"] for r in detail_view["runs"]] == [first["run_id"]]

    cancel = await client.post(runs_url(app["id"], f"/{first['run_id']}/cancel"),
                               headers=owner.headers)  # fmt: skip
    assert (await cancel.get_json())["status"] == "cancelled"
    after = await create_run(client, app["id"], owner.headers, input="now", engine="scripted",
                             session_id=sid)  # fmt: skip
    await wait_status(client, app["id"], after["run_id"], owner.headers, {"completed"})


async def test_concurrent_creates_with_reject_make_exactly_one_run(client, owner, app_and_draft):
    app, _ = app_and_draft
    sid = (await create_session(client, app["id"], owner.headers))["session_id"]
    body = {"input": "race", "engine": "scripted", "script": PAUSE, "session_id": sid}
    responses = await asyncio.gather(
        *(client.post(runs_url(app["id"]), json=body, headers=owner.headers) for _ in range(6))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 409, 409, 409, 409, 409]
    winner = [await r.get_json() for r in responses if r.status_code == 200][0]
    for response in responses:
        if response.status_code == 409:
            detail = (await response.get_json())["detail"]
            assert detail["code"] == "SESSION_BUSY"
            assert detail["active_run_id"] == winner["run_id"]
    detail_view = await get_session(client, app["id"], sid, owner.headers)
    assert detail_view["run_count"] == 1
    assert [r["run_id"] for r in detail_view["runs"]] == [winner["run_id"]]


async def test_enqueue_starts_runs_in_order_when_the_one_before_ends(client, owner, app_and_draft):
    """The scripted engine has no workspace, so nothing but the session's eligibility rule
    keeps the queued runs from starting while the first one is paused."""
    app, _ = app_and_draft
    sid = (await create_session(client, app["id"], owner.headers,
                                multitask_strategy="enqueue"))["session_id"]  # fmt: skip
    first = await create_run(client, app["id"], owner.headers, input="one", engine="scripted",
                             script=PAUSE, session_id=sid)  # fmt: skip
    await wait_status(client, app["id"], first["run_id"], owner.headers, {"paused"})
    later = [
        await create_run(
            client,
            app["id"],
            owner.headers,
            input=f"n{i}",
            engine="scripted",
            session_id=sid,
            script=[{"delta": f"run {i}"}],
        )  # fmt: skip
        for i in (2, 3)
    ]
    # a plain run of the same app is not held back by the session
    plain = await create_run(client, app["id"], owner.headers, input="free", engine="scripted")
    await wait_status(client, app["id"], plain["run_id"], owner.headers, {"completed"})
    for run in later:
        view = await client.get(runs_url(app["id"], f"/{run['run_id']}"), headers=owner.headers)
        assert (await view.get_json())["status"] == "queued"

    resumed = await client.post(runs_url(app["id"], f"/{first['run_id']}/resume"),
                                json={"payload": {"go": True}}, headers=owner.headers)  # fmt: skip
    assert resumed.status_code == 200
    done = [await wait_status(client, app["id"], r["run_id"], owner.headers, {"completed"})
            for r in (first, *later)]  # fmt: skip
    for before, after in zip(done, done[1:], strict=False):
        assert after["started_at"] >= before["completed_at"]


async def test_follow_up_sees_earlier_turns_and_starts_from_the_earlier_runs_edit(
    client,
    owner,
    native_app,
    scripted_openai,
):
    """Run 2 is enqueued while run 1 still works, so the draft at its creation is stale:
    it must start from the revision run 1 produced, and its model must see run 1's turns
    (prompt, tool call, tool result, reply) before its own prompt."""
    app, draft = native_app
    sid = (await create_session(client, app["id"], owner.headers,
                                multitask_strategy="enqueue"))["session_id"]  # fmt: skip
    scripted_openai.push(
        call("coding_agent_apply_patch", patch=PATCH),
        text_reply("I renamed the heading.", first_delay=0.5),
        call("coding_agent_read_file", path="src/App.tsx"),
        text_reply("It says Session Chat."),
    )
    first = await create_run(client, app["id"], owner.headers, input="Rename the heading",
                             session_id=sid)  # fmt: skip
    await scripted_openai.wait_for_requests(2, within=20)  # run 1 is in its second turn
    second = await create_run(client, app["id"], owner.headers,
                              input="What does the heading say now?", session_id=sid)  # fmt: skip
    assert second["base_revision_id"] == draft["id"]  # the draft at creation
    one = await wait_status(client, app["id"], first["run_id"], owner.headers, {"completed"})
    two = await wait_status(client, app["id"], second["run_id"], owner.headers,
                            {"completed", "failed"})  # fmt: skip
    assert two["status"] == "completed", two["error"]
    assert one["result_revision_id"] is not None
    assert two["base_revision_id"] == one["result_revision_id"]  # resolved when it started
    assert two["result_revision_id"] is None  # it only read

    _, events = await read_stream(client, app["id"], second["run_id"], owner.headers)
    read = next(e["data"]["payload"]["output"] for e in events
                if e["data"]["event"] == "tool.completed")  # fmt: skip
    assert "<h1>Session Chat</h1>" in read["content"]  # run 1's edit is in run 2's files

    follow_up = scripted_openai.bodies[2]["messages"]
    assert follow_up[0]["role"] == "system"
    conversation = follow_up[1:]
    assert [m["role"] for m in conversation] == ["user", "assistant", "tool", "assistant", "user"]
    assert conversation[0] == {"role": "user", "content": "Rename the heading"}
    asked = conversation[1]["tool_calls"][0]
    assert asked["function"]["name"] == "coding_agent_apply_patch"
    assert json.loads(asked["function"]["arguments"]) == {"patch": PATCH}
    assert conversation[2]["tool_call_id"] == asked["id"]
    assert json.loads(conversation[2]["content"])["applied_files"] == ["src/App.tsx"]
    assert conversation[3] == {"role": "assistant", "content": "I renamed the heading."}
    assert conversation[4] == {"role": "user", "content": "What does the heading say now?"}


def _streamed_text(events: list[dict[str, Any]]) -> str:
    return "".join(e["data"]["payload"]["content"] for e in events
                   if e["data"]["event"] == "assistant.delta")  # fmt: skip


async def _interrupt_mid_stream(client, owner, app, scripted_openai, strategy):
    """Run 1 patches a file, then streams a few chunks of a reply and hangs; run 2 is
    created with ``strategy`` while that reply is mid-stream. Returns (run 1, run 2, run
    1's events)."""
    sid = (await create_session(client, app["id"], owner.headers))["session_id"]
    scripted_openai.push(
        call("coding_agent_apply_patch", patch=PATCH),
        hang_reply(after_chunks=3, text="partial answer that never ends"),
        text_reply("Second run done."),
    )
    first = await create_run(client, app["id"], owner.headers, input="Rename, then talk",
                             session_id=sid)  # fmt: skip
    url = runs_url(app["id"], f"/{first['run_id']}/stream")
    async with LiveStream(client, url, owner.headers) as stream:
        await stream.until(lambda ev: _streamed_text(ev) != "")
        second = await create_run(client, app["id"], owner.headers, input="Stop and do this",
                                  session_id=sid, multitask_strategy=strategy)  # fmt: skip
        # the create answers once the interrupted run is cancelled (verified)
        one = await (await client.get(url.rsplit("/", 1)[0], headers=owner.headers)).get_json()
        assert one["status"] == "cancelled"
        events = await stream.until(lambda ev: types(ev)[-1] == "run.failed")
    await scripted_openai.wait_for_disconnect(1, within=5.0)  # the model stream was closed
    two = await wait_status(client, app["id"], second["run_id"], owner.headers,
                            {"completed", "failed"})  # fmt: skip
    assert two["status"] == "completed", two["error"]
    assert two["started_at"] >= one["completed_at"]
    return one, two, events


async def test_interrupt_cancels_mid_stream_keeps_the_partial_work_then_runs_the_new_one(
    client,
    owner,
    native_app,
    scripted_openai,
):
    app, draft = native_app
    one, two, events = await _interrupt_mid_stream(client, owner, app, scripted_openai, "interrupt")
    assert events[-1]["data"]["diagnostics"] == [{"message": "run cancelled"}]
    # the patch it made before the interrupt became a revision, which run 2 started from
    assert types(events)[-3:] == ["revision.created", "checkpoint.created", "run.failed"]
    assert one["result_revision_id"] == events[-3]["data"]["payload"]["revision_id"]
    assert two["base_revision_id"] == one["result_revision_id"]
    # run 2's model saw run 1's turns, ending with its partial reply as it was streamed
    partial = _streamed_text(events)
    assert partial and "partial answer that never ends".startswith(partial)
    conversation = scripted_openai.bodies[2]["messages"][1:]
    assert [m["role"] for m in conversation] == ["user", "assistant", "tool", "assistant", "user"]
    assert conversation[0] == {"role": "user", "content": "Rename, then talk"}
    assert conversation[3] == {"role": "assistant", "content": partial}
    assert conversation[4] == {"role": "user", "content": "Stop and do this"}


async def test_rollback_discards_the_interrupted_runs_work(
    client,
    owner,
    native_app,
    scripted_openai,
):
    app, draft = native_app
    one, two, events = await _interrupt_mid_stream(client, owner, app, scripted_openai, "rollback")
    assert events[-1]["data"]["diagnostics"] == [{"message": "run cancelled"}]
    assert "revision.created" not in types(events)  # no revision from the rolled-back run
    assert one["result_revision_id"] is None
    assert two["base_revision_id"] == draft["id"]
    state = await (await client.get(f"/admin/apps/{app['id']}/builder/state",
                                    headers=owner.headers)).get_json()  # fmt: skip
    assert state["current_draft_revision"]["id"] == draft["id"]
    # nor any of its turns: run 2's model sees only its own prompt
    conversation = scripted_openai.bodies[2]["messages"][1:]
    assert conversation == [{"role": "user", "content": "Stop and do this"}]


async def test_openapi_documents_sessions(client):
    spec = await (await client.get("/openapi.json")).get_json()
    base = "/admin/apps/{app_id}/coding-agent/sessions"
    assert set(spec["paths"][base]) == {"get", "post"}
    detail = spec["paths"][base + "/{session_id}"]["get"]
    assert {"200", "404", "422"} <= set(detail["responses"])
    schemas = spec["components"]["schemas"]

    def schema(holder: dict) -> dict:  # inline, or a $ref to components
        return schemas[holder["$ref"].rsplit("/", 1)[1]] if "$ref" in holder else holder

    runs = spec["paths"]["/admin/apps/{app_id}/coding-agent/runs"]["post"]
    create_run = schema(runs["requestBody"]["content"]["application/json"]["schema"])
    text = json.dumps(create_run["properties"]["multitask_strategy"])
    assert all(name in text for name in ("reject", "enqueue", "interrupt", "rollback"))
    assert "session_id" in create_run["properties"]
    run = schema(runs["responses"]["200"]["content"]["application/json"]["schema"])
    assert "session_id" in run["properties"]
    assert "409" in runs["responses"]
    session = schema(detail["responses"]["200"]["content"]["application/json"]["schema"])
    assert "runs" in session["properties"]


async def test_interrupting_a_run_paused_on_an_approval_keeps_its_turns(
    client,
    owner,
    native_app,
    scripted_openai,
):
    """A run paused on an approval holds its session; an interrupt cancels it, and the
    next run's model sees what it had asked, its call answered as interrupted."""
    app, _ = native_app
    sid = (await create_session(client, app["id"], owner.headers))["session_id"]
    scripted_openai.push(call("coding_agent_apply_patch", patch=PATCH), text_reply("Fine."))
    first = await create_run(client, app["id"], owner.headers, input="Rename it",
                             session_id=sid, approval_policy="patches")  # fmt: skip
    await wait_status(client, app["id"], first["run_id"], owner.headers, {"paused"})
    busy = await client.post(runs_url(app["id"]), headers=owner.headers,
                             json={"input": "x", "session_id": sid})  # fmt: skip
    assert busy.status_code == 409  # reject: a paused run still holds the session
    second = await create_run(client, app["id"], owner.headers, input="Never mind",
                              session_id=sid, multitask_strategy="interrupt")  # fmt: skip
    one = await wait_status(client, app["id"], first["run_id"], owner.headers, {"cancelled"})
    assert one["result_revision_id"] is None  # the patch never ran
    await wait_status(client, app["id"], second["run_id"], owner.headers, {"completed"})
    conversation = scripted_openai.bodies[1]["messages"][1:]
    assert [m["role"] for m in conversation] == ["user", "assistant", "tool", "user"]
    assert conversation[0] == {"role": "user", "content": "Rename it"}
    assert json.loads(conversation[2]["content"])["code"] == "TOOL_INTERRUPTED"
    assert conversation[3] == {"role": "user", "content": "Never mind"}
