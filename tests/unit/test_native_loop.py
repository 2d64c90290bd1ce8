"""NativeEngine loop mechanics with a controllable toolbox (real scripted model server):
tool timeouts, cancellation of a running tool, missing user scope or model, and the
text coalescer."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from runtime.engine import (
    Completed,
    EngineEvent,
    Failed,
    ModelTarget,
    RunContext,
    ToolFinished,
    ToolStarted,
)
from runtime.engines.native import NativeEngine
from runtime.settings import Settings, load_settings
from runtime.tools.context import ToolContext
from tests.support import fixtures_openai
from tests.support.scripted_openai import (
    ScriptedOpenAI,
    ScriptedToolCall,
    text_reply,
    tool_call_reply,
)

# The scripted model server listens on loopback; tenant egress refuses it by default.
LOOPBACK = ("127.0.0.0/8",)

scripted_openai = fixtures_openai.scripted_openai


class FakeToolbox:
    """Records calls; ``hang`` makes a call wait until cancelled."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self.calls: list[tuple[str, Any, ToolContext]] = []
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()

    def openai_tools(self) -> list[dict[str, Any]]:
        return [{"type": "function", "function": {"name": "hang", "parameters": {}}}]

    def tool_timeout(self, name: str) -> float:
        return self.timeout

    async def call(self, name: str, arguments: str | dict[str, Any], ctx: ToolContext) -> Any:
        self.calls.append((name, arguments, ctx))
        if name == "hang":
            self.started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        return {"ok": True}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data", egress_allowed_networks=LOOPBACK)


def _ctx(base_url: str | None, workspace: Path | None, user: bool = True) -> RunContext:
    model = None
    if base_url is not None:
        model = ModelTarget(uuid.uuid4(), "openai-compatible", "scripted-model", base_url)
    return RunContext(
        run_id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        app_id=uuid.uuid4(),
        user_id=uuid.uuid4() if user else None,
        engine="native",
        input_params={"input": "go", "messages": []},
        model=model,
        workspace=workspace,
    )


async def _events(engine: NativeEngine, ctx: RunContext) -> list[EngineEvent]:
    session = engine.open(ctx)
    try:
        return [e async for e in session.events()]
    finally:
        await session.close()
        await engine.stop()


async def test_tool_timeout_becomes_an_envelope(
    settings: Settings, scripted_openai: ScriptedOpenAI, tmp_path: Path
) -> None:
    box = FakeToolbox(timeout=0.2)
    scripted_openai.push(
        tool_call_reply(ScriptedToolCall("hang", {"path": "x"})), text_reply("gave up")
    )
    engine = NativeEngine(settings, toolbox_factory=lambda s: box)

    events = await _events(engine, _ctx(scripted_openai.base_url, tmp_path))

    finished = next(e for e in events if isinstance(e, ToolFinished))
    assert finished.output == {"error": "hang timed out after 0.2 seconds", "code": "TOOL_TIMEOUT"}
    assert box.cancelled.is_set()
    assert isinstance(events[-1], Completed)
    # The prompt alone becomes the conversation when the history is empty.
    assert scripted_openai.bodies[0]["messages"][1] == {"role": "user", "content": "go"}


async def test_tool_context_comes_from_the_run_only(
    settings: Settings, scripted_openai: ScriptedOpenAI, tmp_path: Path
) -> None:
    box = FakeToolbox()
    forged = {"path": "a.md", "run_id": str(uuid.uuid4()), "tenant_id": str(uuid.uuid4())}
    scripted_openai.push(tool_call_reply(ScriptedToolCall("read", forged)), text_reply("ok"))
    engine = NativeEngine(settings, toolbox_factory=lambda s: box)
    ctx = _ctx(scripted_openai.base_url, tmp_path)

    await _events(engine, ctx)

    (_name, _args, tool_ctx) = box.calls[0]
    assert (tool_ctx.run_id, tool_ctx.tenant_id) == (ctx.run_id, ctx.tenant_id)
    assert (tool_ctx.app_id, tool_ctx.user_id) == (ctx.app_id, ctx.user_id)
    assert tool_ctx.workspace.root.name == tmp_path.name


async def test_cancel_stops_a_running_tool(
    settings: Settings, scripted_openai: ScriptedOpenAI, tmp_path: Path
) -> None:
    box = FakeToolbox(timeout=60)
    scripted_openai.push(tool_call_reply(ScriptedToolCall("hang", {})))
    engine = NativeEngine(settings, toolbox_factory=lambda s: box)
    seen: list[EngineEvent] = []

    async def consume() -> None:
        async for event in engine.open(_ctx(scripted_openai.base_url, tmp_path)).events():
            seen.append(event)

    task = asyncio.create_task(consume())
    await asyncio.wait_for(box.started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await engine.stop()
    assert box.cancelled.is_set()
    assert isinstance(seen[-1], ToolStarted)


async def test_run_without_user_gets_tool_errors_not_crashes(
    settings: Settings, scripted_openai: ScriptedOpenAI, tmp_path: Path
) -> None:
    box = FakeToolbox()
    scripted_openai.push(tool_call_reply(ScriptedToolCall("read", {})), text_reply("sorry"))
    engine = NativeEngine(settings, toolbox_factory=lambda s: box)

    events = await _events(engine, _ctx(scripted_openai.base_url, tmp_path, user=False))

    finished = next(e for e in events if isinstance(e, ToolFinished))
    assert finished.output["error"] == "Coding-agent tools require a user-scoped run"
    assert box.calls == []
    assert isinstance(events[-1], Completed)


@pytest.mark.parametrize(
    ("with_model", "with_workspace", "message"),
    [
        (False, True, "native engine: no model is bound to this run"),
        (True, False, "native engine: the run has no workspace"),
    ],
)
async def test_missing_model_or_workspace_fails(
    settings: Settings, tmp_path: Path, with_model: bool, with_workspace: bool, message: str
) -> None:
    engine = NativeEngine(settings, toolbox_factory=lambda s: FakeToolbox())
    ctx = _ctx(
        "http://127.0.0.1:9/v1" if with_model else None, tmp_path if with_workspace else None
    )

    events = await _events(engine, ctx)

    assert events == [
        Failed(message, [{"code": events[0].diagnostics[0]["code"], "message": message}])
    ]


async def test_a_credential_problem_fails_the_run_before_connecting(
    settings: Settings, scripted_openai: ScriptedOpenAI, tmp_path: Path
) -> None:
    engine = NativeEngine(settings, toolbox_factory=lambda s: FakeToolbox())
    ctx = _ctx(None, tmp_path)
    target = ModelTarget(uuid.uuid4(), "openai", "gpt", scripted_openai.base_url,
                         credential_error="the model's API key is not available")  # fmt: skip
    ctx = RunContext(**{**{f: getattr(ctx, f) for f in ctx.__slots__}, "model": target})

    events = await _events(engine, ctx)

    assert isinstance(events[-1], Failed)
    assert "the model's API key is not available" in events[-1].message
    assert scripted_openai.requests == []
