"""The OpenCode engine against a real managed ``opencode serve`` and the scripted model server.

Needs the pinned binary (``runwright opencode install``); skipped without it.
One managed server serves the whole module; its state lives in a warm directory under
``.cache/opencode-test`` so OpenCode's one-off plugin install is not repeated per run. Each
test gets its own workspace directory (a fresh OpenCode instance).
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from runtime.engine import (
    Completed,
    Delta,
    EngineEvent,
    EngineRef,
    EngineSession,
    EngineUnsupportedRuntime,
    Failed,
    ModelTarget,
    PreflightRequest,
    RunContext,
    ToolFinished,
    ToolStarted,
    UsageReported,
)
from runtime.engines.opencode import OpenCodeEngine
from tests.support.fixtures_openai import dead_openai_url  # noqa: F401 - fixture
from tests.support.opencode import binary_missing, started_engine, warm_dir
from tests.support.scripted_openai import (
    ScriptedOpenAI,
    ScriptedToolCall,
    error_reply,
    hang_reply,
    text_reply,
    tool_call_reply,
)

_MISSING = binary_missing()

pytestmark = [
    pytest.mark.opencode,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(_MISSING is not None, reason=f"OpenCode not installed: {_MISSING}"),
]


@pytest.fixture(scope="module")
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with warm_dir("shared", tmp_path_factory) as path:
        yield path


@pytest.fixture
def own_dir(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A warm data dir for tests that run their own server (named after the test)."""
    with warm_dir(request.node.name.removeprefix("test_")[:40], tmp_path_factory) as path:
        yield path


@pytest.fixture(scope="module")
def model_server() -> Iterator[ScriptedOpenAI]:
    """One scripted model server for the module; unscripted requests get a plain answer."""
    server = ScriptedOpenAI()
    server.default = text_reply("default answer")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine(shared_dir: Path) -> AsyncIterator[OpenCodeEngine]:
    """The module's engine with its managed server (stopped at the end)."""
    engine = await started_engine(shared_dir)
    try:
        assert await engine.unhealthy_reason() is None
        yield engine
    finally:
        await engine.stop()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = (tmp_path / "app").resolve()
    path.mkdir()
    (path / "README.md").write_text("# demo app\n")
    return path


def _ctx(workspace: Path | None, base_url: str, prompt: str = "say hello") -> RunContext:
    return RunContext(
        run_id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        app_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        engine="opencode",
        input_params={"input": prompt, "messages": []},
        model=ModelTarget(
            model_id=uuid.uuid4(),
            provider="scripted",
            provider_model_id="scripted-model",
            base_url=base_url,
        ),
        workspace=workspace,
    )


async def _collect(session: EngineSession, within: float = 90.0) -> list[EngineEvent]:
    async def run() -> list[EngineEvent]:
        return [event async for event in session.events()]

    try:
        return await asyncio.wait_for(run(), within)
    finally:
        await session.close()


def _text(events: list[EngineEvent]) -> str:
    return "".join(e.content for e in events if isinstance(e, Delta))


# ---- runs ---------------------------------------------------------------------------------


async def test_text_run_streams_deltas_and_completes(
    engine: OpenCodeEngine, model_server: ScriptedOpenAI, workspace: Path
) -> None:
    answer = "Hello from the scripted model, streamed in pieces."
    model_server.push(text_reply(answer, chunk_size=5))
    before = len(model_server.bodies)

    events = await _collect(engine.open(_ctx(workspace, model_server.base_url)))

    assert isinstance(events[0], EngineRef) and events[0].ref.startswith("ses")
    assert _text(events) == answer
    assert sum(isinstance(e, Delta) for e in events) > 1
    assert isinstance(events[-1], Completed)
    assert events[-1].output["last_agent_output"] == answer
    assert events[-1].output["opencode_session_id"] == events[0].ref
    bodies = model_server.bodies[before:]
    assert len(bodies) == 1, "a title request means the session was created without a title"
    assert bodies[0]["model"] == "scripted-model"
    assert bodies[0]["messages"][-1]["content"] in (
        "say hello",
        [{"type": "text", "text": "say hello"}],
    )


async def test_write_tool_changes_the_workspace(
    engine: OpenCodeEngine, model_server: ScriptedOpenAI, workspace: Path
) -> None:
    call = ScriptedToolCall("write", {"filePath": "notes.md", "content": "written by a tool\n"})
    model_server.push(tool_call_reply(call), text_reply("I wrote notes.md."))

    events = await _collect(engine.open(_ctx(workspace, model_server.base_url, "write notes")))

    started = [e for e in events if isinstance(e, ToolStarted)]
    finished = [e for e in events if isinstance(e, ToolFinished)]
    assert [e.tool for e in started] == ["write"] and [e.tool for e in finished] == ["write"]
    assert started[0].span_id == finished[0].span_id
    assert finished[0].diagnostics is None
    assert (workspace / "notes.md").read_text() == "written by a tool\n"
    assert isinstance(events[-1], Completed)
    assert events[-1].output["last_agent_output"] == "I wrote notes.md."


async def test_edit_outside_the_workspace_is_refused(
    engine: OpenCodeEngine, model_server: ScriptedOpenAI, workspace: Path
) -> None:
    outside = workspace.parent / "outside.md"
    call = ScriptedToolCall("write", {"filePath": str(outside), "content": "escape\n"})
    model_server.push(tool_call_reply(call), text_reply("Could not write."))

    events = await _collect(engine.open(_ctx(workspace, model_server.base_url, "escape")))

    finished = [e for e in events if isinstance(e, ToolFinished)]
    assert len(finished) == 1 and finished[0].diagnostics
    assert finished[0].diagnostics[0]["code"] == "OPENCODE_TOOL_ERROR"
    assert "error" in finished[0].output
    assert not outside.exists()
    assert isinstance(events[-1], Completed)


async def test_cancel_mid_stream_is_confirmed_and_closes_the_upstream(
    engine: OpenCodeEngine, model_server: ScriptedOpenAI, workspace: Path
) -> None:
    model_server.push(text_reply("x" * 400, chunk_size=2, delay=0.05))
    disconnects = model_server.disconnects
    session = engine.open(_ctx(workspace, model_server.base_url, "stream slowly"))
    first_delta = asyncio.Event()
    seen: list[EngineEvent] = []

    async def consume() -> None:
        async for event in session.events():
            seen.append(event)
            if isinstance(event, Delta):
                first_delta.set()

    task = asyncio.create_task(consume())
    try:
        await asyncio.wait_for(first_delta.wait(), 60)
        outcome = await session.cancel()
        assert outcome.confirmed, outcome.diagnostics
        await model_server.wait_for_disconnect(disconnects + 1, within=10)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await session.close()
    assert not any(isinstance(e, Completed | Failed) for e in seen)


async def test_upstream_http_400_fails_with_the_provider_message(
    engine: OpenCodeEngine, model_server: ScriptedOpenAI, workspace: Path
) -> None:
    model_server.push(error_reply(400, "scripted upstream rejects this request"))

    events = await _collect(engine.open(_ctx(workspace, model_server.base_url)))

    assert isinstance(events[-1], Failed)
    assert events[-1].message == "scripted upstream rejects this request"
    diagnostic = events[-1].diagnostics[0]
    assert diagnostic["code"] == "OPENCODE_SESSION_ERROR"
    assert diagnostic["status_code"] == 400


async def test_unreachable_upstream_fails_after_the_deadline(
    engine: OpenCodeEngine,
    workspace: Path,
    dead_openai_url: str,  # noqa: F811 - fixture
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()

    events = await _collect(engine.open(_ctx(workspace, dead_openai_url)), within=60)

    assert isinstance(events[-1], Failed)
    assert events[-1].diagnostics[0]["code"] == "OPENCODE_UPSTREAM_UNREACHABLE"
    assert "could not reach the model provider within 3 s" in events[-1].message
    assert loop.time() - started < 45
    session_id = next(e.ref for e in events if isinstance(e, EngineRef))
    status = await engine.client.status(str(workspace))
    assert status.get(session_id, {}).get("type", "idle") == "idle", "session was not aborted"


async def test_killed_opencode_process_fails_the_run(
    model_server: ScriptedOpenAI, workspace: Path, own_dir: Path
) -> None:
    engine = await started_engine(own_dir, opencode_reconnect_attempts=2)
    try:
        model_server.push(hang_reply(after_chunks=2, text="partial answer"))
        session = engine.open(_ctx(workspace, model_server.base_url, "hang"))
        events: list[EngineEvent] = []

        async def consume() -> None:
            async for event in session.events():
                events.append(event)
                if isinstance(event, Delta) and engine.server and engine.server.pid:
                    os.killpg(engine.server.pid, signal.SIGKILL)

        await asyncio.wait_for(consume(), 90)
        await session.close()
    finally:
        await engine.stop()
    assert any(isinstance(e, Delta) for e in events)
    assert isinstance(events[-1], Failed)
    assert events[-1].diagnostics[0]["code"] == "OPENCODE_SERVER_LOST"
    assert "connection lost" in events[-1].message


async def test_silent_stream_is_reopened_and_the_run_reconciled(
    model_server: ScriptedOpenAI, workspace: Path, own_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = await started_engine(
        own_dir,
        opencode_stream_idle_seconds=1.5,
        opencode_reconnect_attempts=6,
    )
    answer = "y" * 120
    assert engine.server is not None and engine.server.pid is not None
    pgid = engine.server.pid

    async def freeze() -> None:
        # OpenCode stops answering long enough for its stream to count as dropped.
        os.killpg(pgid, signal.SIGSTOP)
        try:
            await asyncio.sleep(4.0)
        finally:
            os.killpg(pgid, signal.SIGCONT)

    freezer: asyncio.Task[None] | None = None
    try:
        model_server.push(text_reply(answer, chunk_size=2, delay=0.05))
        session = engine.open(_ctx(workspace, model_server.base_url, "survive a freeze"))
        events: list[EngineEvent] = []

        async def consume() -> None:
            nonlocal freezer
            async for event in session.events():
                events.append(event)
                if isinstance(event, Delta) and freezer is None:
                    freezer = asyncio.create_task(freeze())

        await asyncio.wait_for(consume(), 90)
        await session.close()
    finally:
        if freezer is not None:
            await freezer
        await engine.stop()
    assert "dropped: no event for 1.5 s" in caplog.text
    assert isinstance(events[-1], Completed), events[-1]
    assert events[-1].output["last_agent_output"] == answer


# ---- preflight against the live server -----------------------------------------------------


def _preflight(workspace: Path | None, user: bool = True) -> PreflightRequest:
    return PreflightRequest(
        tenant_id=uuid.uuid4(),
        app_id=uuid.uuid4(),
        user_id=uuid.uuid4() if user else None,
        workspace=workspace,
        model=None,
    )


async def test_preflight_accepts_a_local_workspace(engine: OpenCodeEngine, workspace: Path) -> None:
    context = await engine.preflight(_preflight(workspace))
    assert context == {"opencode_workspace_path": str(workspace)}


@pytest.mark.parametrize("missing", ["none", "not-a-directory"])
async def test_preflight_rejects_a_missing_workspace(
    engine: OpenCodeEngine, tmp_path: Path, missing: str
) -> None:
    # the run's workspace is made later; the directory it goes in must exist now
    path = None if missing == "none" else tmp_path / "nowhere" / "run-id"
    with pytest.raises(EngineUnsupportedRuntime) as err:
        await engine.preflight(_preflight(path))
    assert err.value.detail() == {
        "code": "CODING_AGENT_ENGINE_UNSUPPORTED_RUNTIME",
        "field": "engine",
        "message": "OpenCode engine requires a locally resolvable workspace path.",
    }


async def test_preflight_rejects_a_workload_principal_first(engine: OpenCodeEngine) -> None:
    with pytest.raises(EngineUnsupportedRuntime, match="user-scoped draft sandbox session"):
        await engine.preflight(_preflight(None, user=False))


async def test_a_step_reports_the_token_counts_the_model_sent(
    engine: OpenCodeEngine, model_server: ScriptedOpenAI, workspace: Path
) -> None:
    """Usage (issue 12 item 3): OpenCode's step-finish token counts, as the scripted model
    reported them in its stream's usage chunk, become one UsageReported per model call."""
    usage = {"prompt_tokens": 123, "completion_tokens": 7, "total_tokens": 130}
    model_server.push(text_reply("Counted.", usage=usage))

    events = await _collect(engine.open(_ctx(workspace, model_server.base_url)))

    assert isinstance(events[-1], Completed)
    reported = [e for e in events if isinstance(e, UsageReported)]
    assert [(e.kind, e.prompt_tokens, e.completion_tokens, e.total_tokens) for e in reported] == [
        ("model", 123, 7, 130)
    ]
