"""NativeEngine driven directly (no HTTP) against the scripted model server, with a real
Workspace and the real Toolpack (contract 7.1-7.4)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from runtime.engine import (
    Completed,
    Delta,
    EngineEvent,
    Failed,
    ModelTarget,
    PlanUpdated,
    RunContext,
    ToolFinished,
    ToolStarted,
)
from runtime.engines.native import NativeEngine
from runtime.settings import Settings, load_settings
from tests.support import fixtures_openai
from tests.support.scripted_openai import (
    ScriptedOpenAI,
    ScriptedToolCall,
    hang_reply,
    text_reply,
    tool_call_reply,
)

# The scripted model server listens on loopback; tenant egress refuses it by default.
LOOPBACK = ("127.0.0.0/8",)

scripted_openai = fixtures_openai.scripted_openai
dead_openai_url = fixtures_openai.dead_openai_url

APP_TSX = "\n".join(
    [
        "import React from 'react';",
        "",
        "export function App() {",
        "  return <h1>Hello</h1>;",
        "}",
    ]
)
GOOD_PATCH = """\
--- a/src/App.tsx
+++ b/src/App.tsx
@@ -3,3 +3,3 @@
 export function App() {
-  return <h1>Hello</h1>;
+  return <h1>Hello, Runwright</h1>;
 }
"""
STALE_PATCH = """\
--- a/src/App.tsx
+++ b/src/App.tsx
@@ -3,3 +3,3 @@
 export function App() {
-  return <h1>Goodbye</h1>;
+  return <h1>Hello, Runwright</h1>;
 }
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        data_dir=tmp_path / "data", event_coalesce_ms=30.0, egress_allowed_networks=LOOPBACK
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "App.tsx").write_text(APP_TSX)
    return root


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[NativeEngine]:
    eng = NativeEngine(settings)
    try:
        yield eng
    finally:
        await eng.stop()


def _ctx(base_url: str, workspace: Path, prompt: str = "Change the greeting") -> RunContext:
    target = ModelTarget(
        model_id=uuid.uuid4(),
        provider="openai-compatible",
        provider_model_id="scripted-model",
        base_url=base_url,
    )
    return RunContext(
        run_id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        app_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        engine="native",
        input_params={"input": prompt, "messages": [{"role": "user", "content": prompt}]},
        model=target,
        workspace=workspace,
    )


async def _run(engine: NativeEngine, ctx: RunContext) -> list[EngineEvent]:
    session = engine.open(ctx)
    try:
        return [event async for event in session.events()]
    finally:
        await session.close()


def _tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body["messages"] if m["role"] == "tool"]


async def test_reads_patches_and_completes(
    engine: NativeEngine, scripted_openai: ScriptedOpenAI, workspace: Path
) -> None:
    read = ScriptedToolCall(
        "coding_agent_read_file_range",
        {"path": "src/App.tsx", "start_line": 1, "end_line": 5, "with_line_numbers": True},
        id="call_read",
    )
    patch = ScriptedToolCall("coding_agent_apply_patch", {"patch": GOOD_PATCH}, id="call_patch")
    scripted_openai.push(
        tool_call_reply(read, text="Let me look at the app first."),
        tool_call_reply(patch),
        text_reply("I changed the heading in src/App.tsx to greet Runwright.", delay=0.005),
    )

    events = await _run(engine, _ctx(scripted_openai.base_url, workspace))

    assert isinstance(events[0], PlanUpdated)
    assert events[0].payload["node"] == "agent" and events[0].payload["state"] == "running"
    assert isinstance(events[-1], Completed)
    started = [e for e in events if isinstance(e, ToolStarted)]
    finished = [e for e in events if isinstance(e, ToolFinished)]
    assert [e.tool for e in started] == ["coding_agent_read_file_range", "coding_agent_apply_patch"]
    assert [e.span_id for e in started] == [e.span_id for e in finished]
    assert len({e.span_id for e in started}) == 2
    assert started[0].input["path"] == "src/App.tsx"
    assert "1: import React" in finished[0].output["content"]
    assert finished[1].output["ok"] is True and finished[1].output["code"] == "PATCH_APPLIED"
    assert "Hello, Runwright" in (workspace / "src" / "App.tsx").read_text()

    text = "".join(e.content for e in events if isinstance(e, Delta))
    assert text.startswith("Let me look at the app first.")
    assert text.endswith("I changed the heading in src/App.tsx to greet Runwright.")
    output = events[-1].output
    assert output["last_agent_output"] == (
        "I changed the heading in src/App.tsx to greet Runwright."
    )
    assert output["stopped_reason"] == "stop" and output["iterations"] == 2
    assert output["messages"][0] == {"role": "user", "content": "Change the greeting"}
    assert output["messages"][-1]["role"] == "assistant"

    bodies = scripted_openai.bodies
    assert len(bodies) == 3
    assert bodies[0]["model"] == "scripted-model" and bodies[0]["stream"] is True
    assert bodies[0]["messages"][0]["role"] == "system"
    assert "apply_patch" in bodies[0]["messages"][0]["content"]
    names = {t["function"]["name"] for t in bodies[0]["tools"]}
    assert {"coding_agent_read_file_range", "coding_agent_apply_patch"} <= names
    # The second request carries the assistant's tool call and the tool's result.
    assistant = bodies[1]["messages"][-2]
    assert assistant["tool_calls"][0]["id"] == "call_read"
    assert _tool_messages(bodies[1])[0]["tool_call_id"] == "call_read"
    assert "export function App" in _tool_messages(bodies[1])[0]["content"]


async def test_hunk_mismatch_then_recovery(
    engine: NativeEngine, scripted_openai: ScriptedOpenAI, workspace: Path
) -> None:
    stale = ScriptedToolCall("coding_agent_apply_patch", {"patch": STALE_PATCH}, id="p1")
    good = ScriptedToolCall("coding_agent_apply_patch", {"patch": GOOD_PATCH}, id="p2")
    scripted_openai.push(
        tool_call_reply(stale),
        tool_call_reply(good, text="The file differs; retrying with the refreshed lines."),
        text_reply("Done: the heading now greets Runwright."),
    )

    events = await _run(engine, _ctx(scripted_openai.base_url, workspace))

    finished = [e for e in events if isinstance(e, ToolFinished)]
    assert len(finished) == 2
    failure = finished[0].output
    assert failure["code"] == "PATCH_HUNK_MISMATCH" and failure["error"]
    assert failure["failures"][0]["path"] == "src/App.tsx"
    assert failure["refresh_windows"], "the failure carries a refresh window"
    assert finished[1].output["code"] == "PATCH_APPLIED"
    assert isinstance(events[-1], Completed)
    assert events[-1].output["last_agent_output"] == "Done: the heading now greets Runwright."
    assert "Hello, Runwright" in (workspace / "src" / "App.tsx").read_text()
    # The model saw the failure envelope, refresh window included.
    seen = json.loads(_tool_messages(scripted_openai.bodies[1])[0]["content"])
    assert seen["code"] == "PATCH_HUNK_MISMATCH" and seen["refresh_windows"]


async def test_cancel_mid_stream_closes_upstream(
    engine: NativeEngine, scripted_openai: ScriptedOpenAI, workspace: Path
) -> None:
    scripted_openai.push(hang_reply(after_chunks=3, text="Thinking about it"))
    first_delta = asyncio.Event()
    seen: list[EngineEvent] = []

    async def consume() -> None:
        session = engine.open(_ctx(scripted_openai.base_url, workspace))
        try:
            async for event in session.events():
                seen.append(event)
                if isinstance(event, Delta):
                    first_delta.set()
        finally:
            await session.close()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_delta.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await scripted_openai.wait_for_disconnect(within=5)
    assert scripted_openai.disconnects == 1
    assert not any(isinstance(e, Completed | Failed) for e in seen)


async def test_endpoint_down_fails_with_clear_message(
    engine: NativeEngine, dead_openai_url: str, workspace: Path
) -> None:
    """An operator's (global) endpoint gets the transport's cause; a tenant's gets the one
    sentence every connect failure reads (docs/security.md: no port-scanner oracle)."""
    ctx = _ctx(dead_openai_url, workspace)
    assert ctx.model is not None
    operator = dataclasses.replace(ctx, model=dataclasses.replace(ctx.model, operator_trusted=True))
    events = await _run(engine, operator)

    assert isinstance(events[-1], Failed)
    assert events[-1].message == (
        f"model endpoint {dead_openai_url} is unreachable: "
        "Connection refused (ConnectionRefusedError)"
    )
    assert events[-1].diagnostics == [
        {"code": "MODEL_ENDPOINT_ERROR", "message": events[-1].message}
    ]

    events = await _run(engine, ctx)
    assert isinstance(events[-1], Failed)
    assert events[-1].message == (
        f"model endpoint {dead_openai_url} could not be reached "
        "(connection failed, or not allowed by the server's egress policy)"
    )


async def test_max_tool_iterations_is_enforced(
    scripted_openai: ScriptedOpenAI, workspace: Path, tmp_path: Path
) -> None:
    settings = load_settings(
        data_dir=tmp_path / "data", max_tool_iterations=2, egress_allowed_networks=LOOPBACK
    )
    list_files = ScriptedToolCall("coding_agent_list_files", {})
    scripted_openai.default = tool_call_reply(list_files)
    engine = NativeEngine(settings)
    try:
        events = await _run(engine, _ctx(scripted_openai.base_url, workspace))
    finally:
        await engine.stop()

    assert len([e for e in events if isinstance(e, ToolStarted)]) == 2
    assert len(scripted_openai.bodies) == 3  # the third turn's calls are not executed
    done = events[-1]
    assert isinstance(done, Completed)
    assert done.output["stopped_reason"] == "max_tool_iterations"
    assert done.output["iterations"] == 2
    assert "stopped after 2 rounds of tool calls" in done.output["last_agent_output"]
    plans = [e.payload["iteration"] for e in events if isinstance(e, PlanUpdated)]
    assert plans == [0, 1, 2]


async def test_unknown_tool_and_bad_arguments_go_back_to_the_model(
    engine: NativeEngine, scripted_openai: ScriptedOpenAI, workspace: Path
) -> None:
    scripted_openai.push(
        tool_call_reply(
            ScriptedToolCall("coding_agent_teleport", {}, id="u1"),
            ScriptedToolCall("coding_agent_read_file", "{not json", id="u2"),
        ),
        text_reply("I could not do that."),
    )

    events = await _run(engine, _ctx(scripted_openai.base_url, workspace))

    finished = [e for e in events if isinstance(e, ToolFinished)]
    assert finished[0].output["code"] == "TOOL_NOT_FOUND"
    assert finished[1].output.get("error")
    assert [e.input for e in events if isinstance(e, ToolStarted)] == [{}, "{not json"]
    assert isinstance(events[-1], Completed)
    assert len(_tool_messages(scripted_openai.bodies[1])) == 2


async def test_close_after_abandoning_the_stream_closes_upstream(
    engine: NativeEngine, scripted_openai: ScriptedOpenAI, workspace: Path
) -> None:
    scripted_openai.push(hang_reply(after_chunks=3, text="Thinking about it"))
    session = engine.open(_ctx(scripted_openai.base_url, workspace))
    async for event in session.events():
        if isinstance(event, Delta):
            break  # the consumer walks away without cancelling
    await session.close()
    await scripted_openai.wait_for_disconnect(within=5)


async def test_a_call_repeated_a_third_time_ends_the_run_without_running_it(
    engine: NativeEngine, scripted_openai: ScriptedOpenAI, workspace: Path
) -> None:
    # Different arguments are progress: three reads of different ranges all run.
    for start in (1, 2, 3):
        scripted_openai.push(
            tool_call_reply(
                ScriptedToolCall(
                    "coding_agent_read_file_range", {"path": "src/App.tsx", "start_line": start}
                )
            )
        )
    # The same call (key order aside) three turns in a row is a model stuck in a loop.
    scripted_openai.push(
        tool_call_reply(ScriptedToolCall("coding_agent_list_files", {"limit": 5})),
        tool_call_reply(ScriptedToolCall("coding_agent_list_files", '{ "limit": 5 }')),
    )
    scripted_openai.default = tool_call_reply(
        ScriptedToolCall("coding_agent_list_files", {"limit": 5})
    )

    events = await _run(engine, _ctx(scripted_openai.base_url, workspace))

    started = [e.tool for e in events if isinstance(e, ToolStarted)]
    assert started == ["coding_agent_read_file_range"] * 3 + ["coding_agent_list_files"] * 2
    assert len(scripted_openai.bodies) == 6  # the sixth turn's call was not executed
    done = events[-1]
    assert isinstance(done, Completed)
    assert done.output["stopped_reason"] == "repeated_tool_calls"
    assert done.output["iterations"] == 5
    text = done.output["last_agent_output"]
    assert "repeating the same tool call (coding_agent_list_files)" in text
