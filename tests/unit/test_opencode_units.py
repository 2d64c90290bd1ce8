"""OpenCode engine pieces that need no OpenCode binary: event translation on the recorded
payload shapes (docs/opencode.md section 5), settlement, permission policy, provider config,
preflight of a disabled or unreachable engine, cancel without an upstream."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from runtime.engine import (
    Completed,
    Delta,
    EngineUnavailable,
    EngineUnsupportedRuntime,
    Failed,
    ModelTarget,
    PlanUpdated,
    PreflightRequest,
    RunContext,
    ToolFinished,
    ToolStarted,
    UsageReported,
)
from runtime.engines.opencode import OpenCodeEngine
from runtime.engines.opencode.config import ProviderConfigStore, provider_entry, provider_ref
from runtime.engines.opencode.policy import permission_reply, session_rules
from runtime.engines.opencode.session import OpenCodeSession, build_prompt
from runtime.engines.opencode.translate import (
    Asked,
    Idle,
    Progress,
    Retrying,
    SessionFailed,
    Translator,
    settle,
)
from runtime.messages import prepare_messages
from runtime.settings import Settings

SID = "ses_dd5b74b17ffeUNrtmsUlVkNo9C"
USER_MSG = "msg_22a48b5470017r8oQDGPMeSJTG"
ASSISTANT_MSG = "msg_22a48bbc200128icH7j7teNEZh"
TEXT_PART = "prt_22a48c049001l1cy5fjgqOc2vu"


def frame(kind: str, **props: Any) -> dict[str, Any]:
    return {"id": "evt_1", "type": kind, "properties": props}


def user_message() -> dict[str, Any]:
    info = {"id": USER_MSG, "role": "user", "sessionID": SID, "agent": "build"}
    return frame("message.updated", sessionID=SID, info=info)


def assistant_message(**extra: Any) -> dict[str, Any]:
    info = {"id": ASSISTANT_MSG, "role": "assistant", "sessionID": SID, "modelID": "m", **extra}
    return frame("message.updated", sessionID=SID, info=info)


def text_part(text: str, *, message: str = ASSISTANT_MSG, ended: bool = False) -> dict[str, Any]:
    part: dict[str, Any] = {
        "id": TEXT_PART if message == ASSISTANT_MSG else "prt_user",
        "messageID": message,
        "sessionID": SID,
        "type": "text",
        "text": text,
        "time": {"start": 1, **({"end": 2} if ended else {})},
    }
    return frame("message.part.updated", sessionID=SID, part=part, time=1)


def delta(text: str, part: str = TEXT_PART) -> dict[str, Any]:
    return frame(
        "message.part.delta",
        sessionID=SID,
        messageID=ASSISTANT_MSG,
        partID=part,
        field="text",
        delta=text,
    )


def tool_part(status: str, **state: Any) -> dict[str, Any]:
    part = {
        "id": "prt_tool",
        "messageID": ASSISTANT_MSG,
        "sessionID": SID,
        "type": "tool",
        "tool": "bash",
        "callID": "call_1",
        "state": {"status": status, **state},
    }
    return frame("message.part.updated", sessionID=SID, part=part)


def feed_all(translator: Translator, frames: list[dict[str, Any]]) -> list[Any]:
    return [out for f in frames for out in translator.feed(f)]


def events_only(outputs: list[Any]) -> list[Any]:
    return [o for o in outputs if not isinstance(o, Progress)]


# ---- translation -------------------------------------------------------------------------


def test_plain_prompt_sequence_yields_deltas_then_idle() -> None:
    t = Translator(SID)
    frames = [
        frame("server.connected"),
        frame("session.created", sessionID=SID, info={"id": SID}),
        user_message(),
        text_part("hello", message=USER_MSG, ended=True),
        frame("session.status", sessionID=SID, status={"type": "busy"}),
        assistant_message(),
        frame("message.part.updated", sessionID=SID, part={"id": "p0", "type": "step-start"}),
        text_part(""),
        delta("chunk-0 "),
        delta("chunk-1 "),
        text_part("chunk-0 chunk-1 ", ended=True),
        frame("session.status", sessionID=SID, status={"type": "idle"}),
        frame("session.idle", sessionID=SID),
    ]
    out = events_only(feed_all(t, frames))
    assert out == [Delta("chunk-0 "), Delta("chunk-1 "), Idle(), Idle()]


def test_other_sessions_and_reasoning_deltas_are_ignored() -> None:
    t = Translator(SID)
    other = delta("not ours")
    other["properties"]["sessionID"] = "ses_other"
    reasoning = frame(
        "message.part.updated",
        sessionID=SID,
        part={"id": "prt_r", "messageID": ASSISTANT_MSG, "type": "reasoning", "text": ""},
    )
    out = feed_all(t, [assistant_message(), other, reasoning, delta("thinking", part="prt_r")])
    assert out == []


def test_finished_text_part_delivers_text_missed_by_deltas() -> None:
    t = Translator(SID)
    out = events_only(
        feed_all(t, [assistant_message(), delta("Hel"), text_part("Hello", ended=True)])
    )
    assert out == [Delta("Hel"), Delta("lo")]


def test_tool_part_lifecycle_starts_and_finishes_once() -> None:
    t = Translator(SID)
    frames = [
        tool_part("pending", input={}, raw=""),
        tool_part("running", input={"command": "echo hi", "description": "echo"}),
        tool_part("running", input={"command": "echo hi"}, metadata={"output": "h"}),
        tool_part("completed", input={"command": "echo hi"}, output="hi\n", title="echo hi"),
        tool_part("completed", input={"command": "echo hi"}, output="hi\n", title="echo hi"),
    ]
    out = events_only(feed_all(t, frames))
    assert out == [
        ToolStarted("bash", "call_1", {"command": "echo hi", "description": "echo"}),
        ToolFinished("bash", "call_1", {"output": "hi\n", "title": "echo hi"}),
    ]


def test_tool_error_becomes_a_failed_tool_with_diagnostics() -> None:
    t = Translator(SID)
    message = "The user rejected permission to use this specific tool call."
    out = events_only(feed_all(t, [tool_part("error", input={}, error=message)]))
    assert out == [
        ToolStarted("bash", "call_1", {}),
        ToolFinished(
            "bash",
            "call_1",
            {"error": message},
            diagnostics=[{"message": message, "code": "OPENCODE_TOOL_ERROR"}],
        ),
    ]


def test_session_error_api_error_keeps_the_provider_message() -> None:
    error = {
        "name": "APIError",
        "data": {
            "message": "fake upstream rejects this request",
            "statusCode": 400,
            "isRetryable": False,
            "responseBody": "{}",
        },
    }
    (out,) = Translator(SID).feed(frame("session.error", sessionID=SID, error=error))
    assert out == SessionFailed(
        Failed(
            "fake upstream rejects this request",
            [
                {
                    "code": "OPENCODE_SESSION_ERROR",
                    "message": "fake upstream rejects this request",
                    "error": "APIError",
                    "status_code": 400,
                }
            ],
        )
    )


def test_retry_status_permission_question_and_todos() -> None:
    t = Translator(SID)
    retry = {
        "type": "retry",
        "attempt": 1,
        "message": "Cannot connect to API: Unable to connect.",
        "next": 1,
    }
    permission = {
        "id": "per_1",
        "sessionID": SID,
        "permission": "bash",
        "patterns": ["echo hi-from-tool"],
        "metadata": {"command": "echo hi-from-tool"},
        "always": ["echo *"],
        "tool": {"messageID": ASSISTANT_MSG, "callID": "call_1"},
    }
    out = feed_all(
        t,
        [
            frame("session.status", sessionID=SID, status=retry),
            frame("permission.asked", **permission),
            frame("question.asked", id="que_1", sessionID=SID, questions=[]),
            frame("todo.updated", sessionID=SID, todos=[{"content": "x", "status": "pending"}]),
        ],
    )
    assert out == [
        Retrying("Cannot connect to API: Unable to connect.", 1),
        Asked("permission", permission),
        Asked("question", {"id": "que_1", "sessionID": SID, "questions": []}),
        PlanUpdated({"source": "opencode", "todos": [{"content": "x", "status": "pending"}]}),
    ]


# ---- settlement --------------------------------------------------------------------------


def _msg(role: str, *texts: str, **info: Any) -> dict[str, Any]:
    parts = [{"type": "step-start"}] + [{"type": "text", "text": t} for t in texts]
    return {"info": {"role": role, **info}, "parts": parts}


def test_settle_takes_the_latest_assistant_text() -> None:
    messages = [
        _msg("user", "hi"),
        _msg("assistant", finish="tool-calls"),
        _msg("assistant", "done ", finish="stop"),
    ]
    assert settle(messages, SID) == Completed(
        {"last_agent_output": "done", "opencode_session_id": SID, "finish": "stop"}
    )


def test_settle_reports_assistant_errors_and_empty_replies() -> None:
    error = {"name": "APIError", "data": {"message": "boom"}}
    failed = settle([_msg("user", "hi"), _msg("assistant", "partial", error=error)], SID)
    assert isinstance(failed, Failed) and failed.message == "boom"
    assert failed.diagnostics[0]["code"] == "OPENCODE_ASSISTANT_ERROR"
    aborted = settle([_msg("user"), _msg("assistant", error={"name": "MessageAbortedError"})], SID)
    assert isinstance(aborted, Failed) and "aborted" in aborted.message
    empty = settle([_msg("user", "hi"), _msg("assistant", "  ")], SID)
    assert isinstance(empty, Failed)
    assert empty.diagnostics[0]["code"] == "OPENCODE_EMPTY_RESPONSE"


# ---- policy and config ---------------------------------------------------------------------


def test_permission_policy_allows_only_edits_inside_the_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (tmp_path / "link").symlink_to(tmp_path)

    def edit(path: str) -> dict[str, Any]:
        return {"id": "per_1", "permission": "edit", "metadata": {"filepath": path}}

    assert permission_reply(edit(str(ws / "src" / "a.ts")), ws) == "once"
    assert permission_reply(edit("relative.md"), ws) == "once"
    assert permission_reply(edit(str(tmp_path / "outside.md")), ws) == "reject"
    assert permission_reply(edit(str(ws / ".." / "x.md")), ws) == "reject"
    assert permission_reply({"permission": "edit", "metadata": {}}, ws) == "reject"
    assert permission_reply({"permission": "bash", "patterns": ["rm -rf /"]}, ws) == "reject"
    rules = session_rules(bash="deny")
    assert {"permission": "edit", "pattern": "*", "action": "ask"} in rules
    assert {"permission": "bash", "pattern": "*", "action": "deny"} in rules


def _ctx(**overrides: Any) -> RunContext:
    """A run context for the opencode engine; ``overrides`` replace its fields."""
    values: dict[str, Any] = {
        "run_id": uuid.uuid4(),
        "tenant_id": uuid.uuid4(),
        "app_id": uuid.uuid4(),
        "user_id": uuid.uuid4(),
        "engine": "opencode",
        "input_params": {"input": "x"},
        "model": None,
    }
    values.update(overrides)
    return RunContext(**values)


def _model(base_url: str = "http://127.0.0.1:9/v1", **kw: Any) -> ModelTarget:
    values: dict[str, Any] = {
        "model_id": uuid.uuid4(),
        "provider": "local",
        "provider_model_id": "smollm2",
        "base_url": base_url,
    }
    values.update(kw)
    return ModelTarget(**values)


def test_provider_entry_never_writes_the_key(tmp_path: Path) -> None:
    ref, entry = provider_entry(
        _model(api_key_env="MY_KEY"), context_tokens=8192, output_tokens=256
    )
    assert ref == provider_ref(_model(api_key_env="MY_KEY"))
    assert ref.provider_id.startswith("rw-") and ref.model_key == "smollm2"
    assert entry["npm"] == "@ai-sdk/openai-compatible"
    assert entry["options"] == {"baseURL": "http://127.0.0.1:9/v1", "apiKey": "{env:MY_KEY}"}
    assert entry["models"]["smollm2"]["id"] == "smollm2"
    assert provider_entry(_model(), context_tokens=1, output_tokens=1)[1]["options"]["apiKey"] == (
        "none"
    )
    odd = provider_ref(_model(provider_model_id="org/model:latest"))
    assert odd.model_key.startswith("m-")
    with pytest.raises(ValueError):
        provider_entry(_model(api_key_env="BAD NAME"), context_tokens=1, output_tokens=1)


async def test_config_store_merges_providers(tmp_path: Path) -> None:
    store = ProviderConfigStore(tmp_path / "cfg")
    one = provider_entry(_model("http://127.0.0.1:1/v1"), context_tokens=1, output_tokens=1)
    two = provider_entry(_model("http://127.0.0.1:2/v1"), context_tokens=1, output_tokens=1)
    assert await store.ensure(*one) is True
    assert await store.ensure(*one) is False
    assert await store.ensure(*two) is True
    config = json.loads(store.path.read_text())
    assert config["autoupdate"] is False and config["share"] == "disabled"
    assert set(config["provider"]) == {one[0].provider_id, two[0].provider_id}


def test_prompt_carries_earlier_messages() -> None:
    ctx = _ctx(input_params={"input": "now", "messages": [{"role": "user", "content": "before"}]})
    assert build_prompt(ctx) == "Conversation so far:\nuser: before\n\nCurrent request:\nnow"


def test_prompt_does_not_repeat_the_input_stored_as_the_last_message() -> None:
    """Stored messages always end with the prompt (contract 5): it is sent once."""
    stored = prepare_messages([], "now", 28000)
    ctx = _ctx(input_params={"input": "now", "messages": stored})
    assert build_prompt(ctx) == "now"
    history = prepare_messages([{"role": "user", "content": "before"}], "now", 28000)
    ctx = dataclasses.replace(ctx, input_params={"input": "now", "messages": history})
    assert build_prompt(ctx) == "Conversation so far:\nuser: before\n\nCurrent request:\nnow"


# ---- preflight and cancel without a server -------------------------------------------------


def _request(user: bool = True, workspace: Path | None = None) -> PreflightRequest:
    return PreflightRequest(
        tenant_id=uuid.uuid4(),
        app_id=uuid.uuid4(),
        user_id=uuid.uuid4() if user else None,
        workspace=workspace,
        model=None,
    )


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_preflight_disabled_engine(tmp_path: Path) -> None:
    engine = OpenCodeEngine(Settings(data_dir=tmp_path, opencode_enabled=False))
    await engine.start()
    with pytest.raises(EngineUnsupportedRuntime):
        await engine.preflight(_request(user=False))
    with pytest.raises(EngineUnavailable) as err:
        await engine.preflight(_request(workspace=tmp_path))
    assert err.value.detail() == {
        "code": "CODING_AGENT_ENGINE_UNAVAILABLE",
        "field": "engine",
        "message": "OpenCode engine is unavailable: OpenCode engine is disabled or missing "
        "RUNWRIGHT_OPENCODE_BASE_URL.",
    }
    await engine.stop()


async def test_preflight_unreachable_server_and_cancel_request_failure(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, opencode_enabled=True, opencode_base_url=_dead_url())
    engine = OpenCodeEngine(settings)
    await engine.start()
    try:
        with pytest.raises(EngineUnavailable, match="^OpenCode engine is unavailable: OpenCode"):
            await engine.preflight(_request(workspace=tmp_path))
        ctx = _ctx(model=_model(), workspace=tmp_path, engine_run_ref="ses_gone")
        outcome = await engine.open(ctx).cancel()
        assert not outcome.confirmed
        (diagnostic,) = outcome.diagnostics
        assert diagnostic["code"] == "OPENCODE_CANCEL_UNCONFIRMED"
        assert diagnostic["message"].startswith("OpenCode cancellation request failed: ")
        fresh = engine.open(dataclasses.replace(ctx, engine_run_ref=None))
        assert (await fresh.cancel()).confirmed, "cancel before start has nothing to stop"
    finally:
        await engine.stop()


async def test_managed_engine_without_binary_is_unavailable_and_fails_runs(
    tmp_path: Path,
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        opencode_enabled=True,
        opencode_managed=True,
        opencode_binary=tmp_path / "no-such-opencode",
    )
    engine = OpenCodeEngine(settings)
    await engine.start()
    try:
        with pytest.raises(EngineUnavailable, match="RUNWRIGHT_OPENCODE_BINARY"):
            await engine.preflight(_request(workspace=tmp_path))
        ctx = _ctx(model=_model(), workspace=tmp_path)
        events = [event async for event in engine.open(ctx).events()]
        assert len(events) == 1 and isinstance(events[0], Failed)
        assert events[0].diagnostics[0]["code"] == "OPENCODE_SETUP_FAILED"
    finally:
        await engine.stop()


async def test_cancelling_the_consumer_as_a_frame_arrives_still_cancels_it(
    tmp_path: Path,
) -> None:
    """A cancellation that coincides with the next frame must not be lost (Python 3.11's
    ``asyncio.wait_for`` drops it when the awaited ``queue.get()`` is already done), else the
    session loops on forever after its run was cancelled."""
    engine = OpenCodeEngine(Settings(data_dir=tmp_path, opencode_enabled=False))
    ctx = _ctx(model=_model(), workspace=tmp_path)
    session = OpenCodeSession(engine, ctx)
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    session._pump = SimpleNamespace(queue=queue)  # type: ignore[assignment]

    async def consume() -> None:
        async for _ in session._consume(Translator(SID)):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)  # waiting for a frame
    queue.put_nowait({"type": "server.heartbeat", "properties": {}})
    await asyncio.sleep(0)  # the frame is taken, the consumer not yet resumed
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=2.0)
    if not done:
        task.cancel()
        await asyncio.wait([task])
    assert done and task.cancelled(), "the consumer swallowed its cancellation"


async def test_an_abort_answered_false_is_unconfirmed(tmp_path: Path) -> None:
    """Contract 6: ``cancelled: false`` from upstream is not a confirmation (fail-closed)."""

    async def answer_false(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n"
            b"Connection: close\r\n\r\nfalse"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer_false, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = Settings(
        data_dir=tmp_path, opencode_enabled=True, opencode_base_url=f"http://127.0.0.1:{port}"
    )
    engine = OpenCodeEngine(settings)
    await engine.start()
    try:
        ctx = _ctx(model=_model(), workspace=tmp_path, engine_run_ref="ses_busy")
        outcome = await engine.open(ctx).cancel()
        assert not outcome.confirmed
        assert outcome.diagnostics == [
            {
                "code": "OPENCODE_CANCEL_UNCONFIRMED",
                "message": "OpenCode cancellation not confirmed",
            }
        ]
    finally:
        await engine.stop()
        server.close()
        await server.wait_closed()


def test_step_finish_and_timed_tools_report_usage_once() -> None:
    t = Translator(SID)
    step = {
        "id": "prt_step",
        "messageID": ASSISTANT_MSG,
        "sessionID": SID,
        "type": "step-finish",
        "reason": "tool-calls",
        "cost": 0,
        "tokens": {"input": 90, "output": 12, "reasoning": 3, "cache": {"read": 10, "write": 0}},
    }
    finished = frame("message.part.updated", sessionID=SID, part=step)
    bare = frame(
        "message.part.updated",
        sessionID=SID,
        part={**step, "id": "prt_step2", "tokens": {}},
    )
    timed = tool_part("completed", input={}, output="", time={"start": 1000, "end": 3500})
    out = feed_all(t, [assistant_message(), finished, finished, bare, timed])
    usage = [o for o in out if isinstance(o, UsageReported)]
    assert [(u.kind, u.name, u.seconds) for u in usage] == [
        ("model", "m", None),
        ("model", "m", None),
        ("tool", "bash", 2.5),
    ]
    # prompt = input + cached, completion = output + reasoning; nothing invented when absent.
    assert (usage[0].prompt_tokens, usage[0].completion_tokens, usage[0].total_tokens) == (
        100,
        15,
        115,
    )
    assert (usage[1].prompt_tokens, usage[1].completion_tokens, usage[1].total_tokens) == (
        None,
        None,
        None,
    )
    # Derived ids: the same frame seen again (a replayed stream) is recorded once.
    assert usage[0].call_id == Translator(SID)._step_finished("prt_step", step)[0].call_id
