"""Usage accounting (issue 12 item 3) through the HTTP API: token counts per model call and
per run from the model's streamed usage, tool wall time, ``usage.updated`` events, a server
that reports no usage, and a tenant's totals (never another tenant's)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from tests.support.api import create_app_via_api
from tests.support.openai_script import per_prompt
from tests.support.runs import create_run, read_stream, runs_url, wait_status
from tests.support.scripted_openai import (
    ScriptedOpenAI,
    ScriptedToolCall,
    text_reply,
    tool_call_reply,
)

USAGE = "/admin/usage"


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _read(path: str, usage: dict[str, int] | None = None) -> Any:
    return tool_call_reply(ScriptedToolCall("coding_agent_read_file", {"path": path}), usage=usage)


async def _run_to_end(
    client: Any, app_id: str, headers: dict[str, str], prompt: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Create a native run, read its whole stream; returns (the run as GET shows it, the
    events' envelopes)."""
    run = await create_run(client, app_id, headers, input=prompt)
    _, events = await read_stream(client, app_id, run["run_id"], headers, within=60)
    response = await client.get(runs_url(app_id, f"/{run['run_id']}"), headers=headers)
    assert response.status_code == 200
    return await response.get_json(), [e["data"] for e in events]


async def _native_tenant(client: Any, seed: Any, make_model: Any, server: ScriptedOpenAI) -> Any:
    admin = await seed.tenant_admin()
    await make_model(admin.tenant_id, default=True, base_url=server.base_url)
    return admin


async def test_a_multi_call_run_sums_the_usage_its_model_reported(
    client,
    owner,
    native_app,
    scripted_openai: ScriptedOpenAI,
):
    app, _ = native_app
    scripted_openai.push(
        _read("src/App.tsx", _usage(100, 10)),
        _read("src/main.tsx", _usage(150, 20)),
        text_reply("Both files read.", usage=_usage(200, 30)),
    )
    run, events = await _run_to_end(client, app["id"], owner.headers, "Read two files")
    assert events[-1]["event"] == "run.completed"
    assert all(b.get("stream_options") == {"include_usage": True} for b in scripted_openai.bodies)

    # One usage.updated per model call, each with the call's own counts and the run's sums.
    updates = [e for e in events if e["event"] == "usage.updated"]
    assert [e["stage"] for e in updates] == ["usage"] * 3
    calls = [(u["payload"]["call"]["prompt_tokens"], u["payload"]["call"]["completion_tokens"],
              u["payload"]["call"]["total_tokens"]) for u in updates]  # fmt: skip
    assert calls == [(100, 10, 110), (150, 20, 170), (200, 30, 230)]
    sums = [u["payload"]["usage"]["total_tokens"] for u in updates]
    assert sums == [110, 280, 510]
    assert all(u["payload"]["call"]["model"] == "m" for u in updates)
    assert all(u["payload"]["call"]["seconds"] >= 0 for u in updates)
    # Each model call's update comes after that call's text or tool calls, before what the
    # next call produced.
    order = [e["event"] for e in events]
    first_tool = order.index("tool.started")
    assert order.index("usage.updated") < first_tool

    usage = run["usage"]
    assert usage["prompt_tokens"] == 450
    assert usage["completion_tokens"] == 60
    assert usage["total_tokens"] == 510
    assert usage["model_calls"] == 3 and usage["model_calls_without_usage"] == 0
    assert usage["tool_calls"] == 2 and usage["tool_seconds"] >= 0
    assert usage["model_seconds"] > 0
    assert updates[-1]["payload"]["usage"] == usage
    # The terminal event carries the run object with the same usage; so do the lists.
    assert events[-1]["payload"]["usage"] == usage
    listed = await client.get(runs_url(app["id"]), headers=owner.headers)
    assert (await listed.get_json())[0]["usage"] == usage


async def test_a_server_that_reports_no_usage_leaves_the_counts_unknown(
    client,
    owner,
    native_app,
    scripted_openai: ScriptedOpenAI,
):
    scripted_openai.send_usage = False
    app, _ = native_app
    scripted_openai.push(_read("src/App.tsx"), text_reply("Read it."))
    run, events = await _run_to_end(client, app["id"], owner.headers, "Read a file")
    assert events[-1]["event"] == "run.completed"

    updates = [e["payload"] for e in events if e["event"] == "usage.updated"]
    assert len(updates) == 2
    for update in updates:
        call = update["call"]
        assert (call["prompt_tokens"], call["completion_tokens"], call["total_tokens"]) == (
            None,
            None,
            None,
        )
    usage = run["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (
        None,
        None,
        None,
    )
    assert usage["model_calls"] == 2 and usage["model_calls_without_usage"] == 2
    assert usage["tool_calls"] == 1

    # The tenant's totals know the calls but invent no tokens.
    totals = await client.get(USAGE, headers=owner.headers)
    body = await totals.get_json()
    assert body["totals"]["model_calls"] == 2
    assert body["totals"]["model_calls_without_usage"] == 2
    assert body["totals"]["total_tokens"] is None


async def test_tenant_totals_count_only_the_tenants_own_usage(
    client,
    owner,
    seed,
    make_model,
    native_app,
    scripted_openai: ScriptedOpenAI,
):
    first, _ = native_app
    second, _ = await create_app_via_api(client, owner.headers)
    stranger = await _native_tenant(client, seed, make_model, scripted_openai)
    theirs, _ = await create_app_via_api(client, stranger.headers)
    before = datetime.now(UTC)

    # Tenant A: a two-call run in one app, a one-call run in the other. Tenant B: one run.
    scripted_openai.push(
        _read("src/App.tsx", _usage(100, 10)), text_reply("a", usage=_usage(200, 20))
    )
    await _run_to_end(client, first["id"], owner.headers, "one")
    scripted_openai.push(text_reply("b", usage=_usage(40, 4)))
    await _run_to_end(client, second["id"], owner.headers, "two")
    scripted_openai.push(text_reply("c", usage=_usage(9000, 900)))
    await _run_to_end(client, theirs["id"], stranger.headers, "three")

    response = await client.get(USAGE, headers=owner.headers)
    assert response.status_code == 200
    mine = await response.get_json()
    assert mine["tenant_id"] == str(owner.tenant_id)
    totals = mine["totals"]
    assert (totals["prompt_tokens"], totals["completion_tokens"], totals["total_tokens"]) == (
        340,
        34,
        374,
    )
    assert totals["model_calls"] == 3 and totals["runs"] == 2 and totals["tool_calls"] == 1
    by_app = {a["app_id"]: a for a in mine["by_app"]}
    assert set(by_app) == {first["id"], second["id"]}
    assert by_app[first["id"]]["total_tokens"] == 330 and by_app[first["id"]]["runs"] == 1
    assert by_app[second["id"]]["total_tokens"] == 44
    assert len(mine["by_model"]) == 1 and mine["by_model"][0]["total_tokens"] == 374
    assert mine["by_model"][0]["model_name"]

    response = await client.get(USAGE, headers=stranger.headers)
    theirs_body = await response.get_json()
    assert theirs_body["totals"]["total_tokens"] == 9900
    assert [a["app_id"] for a in theirs_body["by_app"]] == [theirs["id"]]
    # Another tenant's id in X-Tenant-ID is refused by the chain (contract 9).
    spoofed = {**owner.headers, "X-Tenant-ID": str(stranger.tenant_id)}
    assert (await client.get(USAGE, headers=spoofed)).status_code == 403

    # The range is on when calls ended: [from, to).
    start = quote(before.isoformat())
    end = quote((datetime.now(UTC) + timedelta(seconds=1)).isoformat())
    inside = await (
        await client.get(f"{USAGE}?from={start}&to={end}", headers=owner.headers)
    ).get_json()
    assert inside["totals"]["total_tokens"] == 374
    earlier = await client.get(f"{USAGE}?to={start}", headers=owner.headers)
    assert (await earlier.get_json())["totals"] == {
        "prompt_tokens": None, "completion_tokens": None, "total_tokens": None,
        "model_calls": 0, "model_calls_without_usage": 0, "model_seconds": 0.0,
        "tool_calls": 0, "tool_seconds": 0.0, "runs": 0,
    }  # fmt: skip

    # Bad ranges and unknown parameters are 422; a member without the admin role is 403.
    for query in (f"?from={end}&to={start}", "?since=yesterday", "?from=12"):
        response = await client.get(f"{USAGE}{query}", headers=owner.headers)
        assert response.status_code == 422, query
    member = await seed.member(owner.tenant_id, role="member")
    assert (await client.get(USAGE, headers=member.headers)).status_code == 403


async def test_a_to_near_year_one_keeps_the_default_from_in_range(client, owner):
    """The default ``from`` (``to`` minus 30 days) stops at the earliest instant instead of
    leaving the datetime range (was a 500 OverflowError)."""
    early = await client.get(f"{USAGE}?to=0001-01-10T00:00:00Z", headers=owner.headers)
    assert early.status_code == 200, await early.get_data(as_text=True)
    body = await early.get_json()
    assert (body["from"], body["to"]) == ("0001-01-01T00:00:00+00:00", "0001-01-10T00:00:00+00:00")
    assert body["totals"]["runs"] == 0
    first = await client.get(f"{USAGE}?to=0001-01-01T00:00:00Z", headers=owner.headers)
    assert first.status_code == 422  # an empty range: "from must be before to"
    assert (await first.get_json())["detail"][0]["loc"] == ["query", "from"]


async def test_parallel_runs_record_every_call_without_a_database_deadlock(
    client,
    owner,
    native_app,
    scripted_openai: ScriptedOpenAI,
    caplog,
):
    """Each model call writes its usage (run_usage row, the run's sums) while the event
    writer stores its ``usage.updated``: both lock the run's row and update it. Both took
    FOR SHARE first and then upgraded it for their UPDATE, so the two deadlocked (Postgres
    aborted one, which was retried: 7-11 "deadlock detected" per 16 runs of 16 calls here).
    Now each takes the row lock its UPDATE needs at once: none."""
    caplog.set_level(logging.WARNING)
    app, _ = native_app
    runs, calls = 16, 16
    reads = [
        tool_call_reply(
            ScriptedToolCall(
                "coding_agent_read_file_range",
                {"path": "src/App.tsx", "start_line": 1, "end_line": n + 2},
            )
        )
        for n in range(calls - 1)
    ]  # distinct calls: a turn repeating the two before it would end the run early
    scripted_openai.default = per_prompt(
        {f"prompt {i}": [*reads, text_reply("done")] for i in range(runs)}
    )
    created = [
        await create_run(
            client, app["id"], owner.headers, input=f"prompt {i}", tools=["read_file_range"]
        )
        for i in range(runs)
    ]
    for run in created:
        done = await wait_status(client, app["id"], run["run_id"], owner.headers,
                                 {"completed", "failed"}, within=120)  # fmt: skip
        assert done["status"] == "completed", done["error"]
        assert done["usage"]["model_calls"] == calls
        assert done["usage"]["tool_calls"] == calls - 1
    assert "deadlock detected" not in caplog.text
