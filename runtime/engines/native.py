"""The native engine: an agent loop over the OpenAI chat-completions protocol (contract 7.1).

One session runs one agent node: system instructions plus the run's chat history go to the
run's pinned model with every toolpack tool (or the run's selection, the create field
``tools``: runtime/tools/selection.py; a call of a tool not offered is answered
``TOOL_NOT_ALLOWED`` without running); each tool call the model makes is executed in
turn against the run's workspace (sequential, per-tool timeout) and its envelope goes back
as a ``tool`` message; the loop ends when the model answers without tool calls
(``stopped_reason`` ``stop``), when ``max_tool_iterations`` model turns have called tools
(``max_tool_iterations``), or when a turn repeats exactly the calls of the two turns before
it (``repeated_tool_calls``: the calls are not run again).

Events (runtime.engine): ``PlanUpdated {node, span_id, state, iteration}`` before each model
turn, ``Delta`` text as streamed (the run's pump coalesces it), ``ToolStarted`` /
``ToolFinished`` per call (one span id per call), ``UsageReported`` after each completed
model request (its token counts as the endpoint's usage chunk gave them) and each tool
call (its wall time), then
``Completed(output={"last_agent_output", "messages", "iterations", "stopped_reason"})``,
or ``Failed`` with the model client's message when the endpoint fails (docs/design.md 5: a
model endpoint that is down fails the run with a clear diagnostic).

Approvals (issue 12, runtime/approvals.py): a call the run's policy marks is not run; the
session ends with ``Paused`` carrying the pending request and the loop's state (history,
transcript, turn count, the turn's unanswered calls). A session opened with that state and
the person's decision continues from it without asking the model again: an approved call
runs (with edited arguments if given), a rejected one answers the model with the reason.

Cancelling the consuming task stops the model stream (the HTTP response is closed) and any
running tool at once; native cancel is always confirmed (contract 7.1).

The tool context is built from the :class:`RunContext` only: nothing in a model's arguments
can change the run, tenant, app, user or workspace a tool acts on (docs/design.md 8.7).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from runtime import approvals
from runtime.engine import (
    Completed,
    Delta,
    Engine,
    EngineEvent,
    EngineSession,
    Failed,
    ModelTarget,
    Paused,
    PlanUpdated,
    RevisionsRecorded,
    RunContext,
    ToolFinished,
    ToolStarted,
    Transcript,
    UsageReported,
)
from runtime.engines.native_instructions import SYSTEM_INSTRUCTIONS
from runtime.metrics import Metrics
from runtime.model_client import (
    EncodedTools,
    ModelClient,
    ModelError,
    StreamEnd,
    TextDelta,
    ToolCall,
)
from runtime.settings import Settings
from runtime.tools.context import CheckpointHost, ToolContext, WorkspaceOrigin
from runtime.tools.selection import NOT_ALLOWED, allowed, run_selection
from runtime.usage import openai_counts
from runtime.workspace import Workspace

log = logging.getLogger(__name__)

__all__ = ["AGENT_NODE", "MAX_TOOL_MESSAGE_CHARS", "NativeEngine", "Toolbox"]

AGENT_NODE = "agent"
"""The ``node`` named in ``plan.updated`` payloads."""

MAX_TOOL_MESSAGE_CHARS = 60_000
"""A tool envelope longer than this (as JSON) is cut before it goes back to the model."""

USER_SCOPE_ERROR = "Coding-agent tools require a user-scoped run"
STATE_KEY = approvals.NATIVE_STATE_KEY
"""The key of the loop's state in a paused run's checkpoint."""
STATE_VERSION = 1
MODEL_ERROR_CODE = "MODEL_ENDPOINT_ERROR"
_TOOL_SETS_KEPT = 32
REPEATED_CALLS_LIMIT = 3
"""A model turn whose tool calls equal those of the previous two turns ends the run
(``stopped_reason`` ``repeated_tool_calls``) instead of running them a third time."""
"""Diagnostics code of a run failed by its model endpoint."""


class Toolbox(Protocol):
    """What the engine needs of the toolpack (``runtime.tools.Toolpack``)."""

    def openai_tools(self) -> list[dict[str, Any]]:
        """The OpenAI function-tool specs of every enabled tool."""
        ...

    def tool_timeout(self, name: str) -> float:
        """The tool's own timeout in seconds (contract 7.3)."""
        ...

    async def call(self, name: str, arguments: str | dict[str, Any], ctx: ToolContext) -> Any:
        """Run one tool; never raises, failures are ``{error, code}`` envelopes."""
        ...


ToolboxFactory = Callable[[Settings], Toolbox]
ClientFactory = Callable[[ModelTarget, Settings], ModelClient]


def _default_toolbox(settings: Settings) -> Toolbox:
    from runtime.tools import Toolpack  # imported late: the toolpack imports settings

    toolpack: Toolbox = Toolpack(settings)
    return toolpack


def _default_client(target: ModelTarget, settings: Settings) -> ModelClient:
    return ModelClient.for_target(
        target, timeout=settings.model_request_timeout_seconds, egress=settings.egress_policy()
    )


class NativeEngine(Engine):
    """The native agent loop, shared by all runs of a process.

    Args:
        settings: ``max_tool_iterations``, ``tool_timeout_seconds``,
            ``model_request_timeout_seconds`` and ``model_max_output_tokens`` are read here.
        toolbox_factory: Builds the toolpack once (default ``runtime.tools.Toolpack``).
        checkpoints: Checkpoint backend handed to the tools (None: checkpoint tools fail
            cleanly).
        client_factory: Builds a :class:`ModelClient` per model binding (default: the
            OpenAI SDK client with the settings' request timeout and, for a tenant's model,
            the egress policy). Clients are cached per ``(base_url, key, trusted)`` and
            closed by :meth:`stop`.
        metrics: where model requests and tokens are counted (default: a private
            registry nobody scrapes).
    """

    name = "native"
    preflight_uses_model = False  # the default preflight: no checks, no model needed
    preflight_uses_workspace = False  # ... and no workspace path
    # Only its tools touch the workspace: made at the first tool call, so a run that calls
    # none skips making, auto-applying and removing it (runtime.engine.PendingWorkspace).
    lazy_workspace = True

    def __init__(
        self,
        settings: Settings,
        *,
        toolbox_factory: ToolboxFactory = _default_toolbox,
        checkpoints: CheckpointHost | None = None,
        client_factory: ClientFactory = _default_client,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.checkpoints = checkpoints
        self._toolbox_factory = toolbox_factory
        self._toolbox: Toolbox | None = None
        self._tools: dict[tuple[str, ...] | None, EncodedTools] = {}
        self._client_factory = client_factory
        self._clients: dict[tuple[str, str | None, bool], ModelClient] = {}

    @property
    def toolbox(self) -> Toolbox:
        """The toolpack (built on first use)."""
        if self._toolbox is None:
            self._toolbox = self._toolbox_factory(self.settings)
        return self._toolbox

    def tools_for(self, selection: tuple[str, ...] | None) -> EncodedTools:
        """The function-tool specs a run offers (``selection``: its create field ``tools``
        as function names, None for all), built and encoded once per selection (they are
        the same for every model request)."""
        encoded = self._tools.get(selection)
        if encoded is None:
            specs = [t for t in self.toolbox.openai_tools()
                     if allowed(selection, t["function"]["name"])]  # fmt: skip
            if len(self._tools) >= _TOOL_SETS_KEPT:  # clients choose selections: bound it
                self._tools.clear()
            encoded = self._tools[selection] = EncodedTools.of(specs)
        return encoded

    def client_for(self, target: ModelTarget) -> ModelClient:
        """The shared client for a model binding.

        Raises:
            ModelError: the binding cannot be used (``target.credential_error``).
        """
        if target.credential_error is not None:  # never cached: the owner may fix it
            return self._client_factory(target, self.settings)
        key = (target.base_url, target.api_key, target.operator_trusted)
        client = self._clients.get(key)
        if client is None:
            client = self._client_factory(target, self.settings)
            self._clients[key] = client
        return client

    def open(self, ctx: RunContext) -> EngineSession:
        """A session for one run execution (no I/O until ``events()`` is iterated)."""
        return NativeSession(self, ctx)

    async def stop(self) -> None:
        """Close every cached model client."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


class NativeSession(EngineSession):
    """One run's agent loop. Create with :meth:`NativeEngine.open`."""

    def __init__(self, engine: NativeEngine, ctx: RunContext) -> None:
        self._engine = engine
        self._ctx = ctx
        # A session run reports its transcript as it grows (docs/design.md 10), so an
        # interrupted run's turns are kept up to its last step.
        self._in_session = ctx.session_id is not None
        self._settings = engine.settings
        self._events: AsyncGenerator[EngineEvent, None] | None = None

    def events(self) -> AsyncIterator[EngineEvent]:
        """Run the loop; see the module docstring for the events and their order."""
        events = self._events
        if events is None:
            events = self._events = self._run()
        return events

    async def close(self) -> None:
        """Close the loop if a consumer left it suspended (its model stream closes too)."""
        if self._events is not None:
            with contextlib.suppress(RuntimeError):  # still running elsewhere
                await self._events.aclose()

    async def _run(self) -> AsyncGenerator[EngineEvent, None]:
        ctx = self._ctx
        if ctx.model is None:
            yield _failed("NO_MODEL", "native engine: no model is bound to this run")
            return
        if ctx.workspace is None:
            yield _failed("NO_WORKSPACE", "native engine: the run has no workspace")
            return
        try:
            client = self._engine.client_for(ctx.model)
        except ModelError as exc:
            yield _failed(MODEL_ERROR_CODE, str(exc))
            return
        toolbox = self._engine.toolbox
        selection = run_selection(ctx.input_params)
        tools = self._engine.tools_for(selection)
        # Built when the first tool runs: a run whose model calls none never makes its
        # workspace (RunContext.workspace_pending).
        tool_ctx = _Tools(ctx, self._engine.checkpoints, self._engine.metrics)
        recorded = tool_ctx.recorded

        policy = approvals.run_policy(ctx.input_params)
        try:
            loop, decision = _start_state(ctx)
            if loop.files is not None:  # the workspace as it was at the pause (any node)
                root = await _workspace_root(ctx)
                await asyncio.to_thread(Workspace(root).materialise, loop.files)
                loop.files = None
        except (ValueError, OSError) as exc:  # a stored state that cannot be used: fail closed
            yield _failed("ENGINE_STATE_INVALID", f"native engine: cannot resume: {exc}")
            return
        if loop.transcript and self._in_session:  # resumed: what it had said before the pause
            yield Transcript(tuple(loop.transcript))
        limit = self._settings.max_tool_iterations
        while True:
            # The calls of the model's last turn, in order; each may wait for a person.
            while loop.pending:
                call = loop.pending[0]
                if not allowed(selection, call.name):  # not offered: refused, never run
                    steps = self._refused(call, loop, _not_offered(call.name))
                elif decision is not None:
                    steps = self._decided(toolbox, call, decision, tool_ctx, recorded, loop)
                    decision = None
                elif approvals.tool_needs_approval(policy, call.name):
                    root = await _workspace_root(ctx)
                    loop.files = await asyncio.to_thread(Workspace(root).snapshot)
                    yield _pause(loop, call)
                    return
                else:
                    steps = self._run_call(toolbox, call, call, tool_ctx, recorded, loop)
                async for event in steps:
                    yield event
                loop.pending.pop(0)
            yield PlanUpdated(
                {"node": AGENT_NODE, "span_id": loop.span, "state": "running",
                 "iteration": loop.tool_turns}
            )  # fmt: skip
            parts: list[str] = []
            calls: list[ToolCall] = []
            usage: dict[str, Any] | None = None
            started = time.perf_counter()
            stream = client.stream(
                model=ctx.model.provider_model_id,
                messages=[*loop.history, *loop.transcript],
                tools=tools,
                max_tokens=self._settings.model_max_output_tokens,
                include_usage=True,  # recorded when the endpoint reports it (usage)
            )
            timing = self._engine.metrics.model_call()
            try:
                async with contextlib.aclosing(stream) as items:
                    async for item in items:
                        timing.item(item)
                        if isinstance(item, TextDelta):
                            parts.append(item.text)
                            yield Delta(item.text)
                        elif isinstance(item, ToolCall):
                            calls.append(item)
                        elif isinstance(item, StreamEnd):
                            usage = item.usage
                timing.ok()
            except ModelError as exc:
                timing.failed(exc.kind)
                log.warning("model request failed (%s): %s", exc.kind, exc)
                yield _failed(MODEL_ERROR_CODE, str(exc))
                return
            finally:
                timing.close()
            yield _model_usage(ctx.model.provider_model_id, time.perf_counter() - started, usage)
            text = "".join(parts)
            stopped = None
            if calls and loop.tool_turns >= limit:
                # Contract 7.1 cap: the calls of this turn are not executed.
                stopped, note = "max_tool_iterations", _limit_text(limit)
            elif calls and _repeats(loop.transcript, calls):
                # A model stuck on one call would spend the whole cap (30 slow turns on a
                # small local model) learning nothing new: the calls are not executed.
                stopped, note = "repeated_tool_calls", _repeat_text(calls)
            if stopped is not None:
                text = text.strip() or note
                loop.transcript.append({"role": "assistant", "content": text})
                if self._in_session:
                    yield Transcript(tuple(loop.transcript))
                yield Completed(_output(text, loop, stopped))
                return
            assistant: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                assistant["tool_calls"] = [call.as_message_item() for call in calls]
            loop.transcript.append(assistant)
            if self._in_session:
                yield Transcript(tuple(loop.transcript))
            if not calls:
                yield Completed(_output(text, loop, "stop"))
                return
            loop.tool_turns += 1
            loop.pending = list(calls)

    async def _run_call(
        self,
        toolbox: Toolbox,
        call: ToolCall,
        run: ToolCall,
        tool_ctx: _Tools,
        recorded: list[RevisionsRecorded],
        loop: _LoopState,
    ) -> AsyncIterator[EngineEvent]:
        """Run ``run`` (``call``, or it with a reviewer's arguments) and answer ``call``."""
        span_id = str(uuid.uuid4())
        yield ToolStarted(tool=call.name, span_id=span_id, input=_input_of(run))
        started = time.perf_counter()
        output = await self._call_tool(toolbox, run, tool_ctx)
        seconds = time.perf_counter() - started
        while recorded:  # the run's actor records them before the tool's result
            yield recorded.pop(0)
        yield ToolFinished(tool=call.name, span_id=span_id, output=output)
        yield UsageReported("tool", call.name, seconds)
        told = output
        if run is not call:  # the model learns its call ran with other arguments
            told = {"reviewer_edited_arguments": _input_of(run), "result": output}
        loop.transcript.append(
            {"role": "tool", "tool_call_id": call.id, "content": _tool_content(told)}
        )
        if self._in_session:
            yield Transcript(tuple(loop.transcript))

    async def _decided(
        self,
        toolbox: Toolbox,
        call: ToolCall,
        decision: approvals.Decision,
        tool_ctx: _Tools,
        recorded: list[RevisionsRecorded],
        loop: _LoopState,
    ) -> AsyncIterator[EngineEvent]:
        """A person's decision on ``call``: approved, it runs (with the edited arguments
        if any; the toolpack validates them as it does a model's); rejected, the model gets
        the reason as the call's result (``tool.failed``, ``APPROVAL_REJECTED``)."""
        if decision.approve:
            run = call
            if decision.arguments is not None:
                run = ToolCall(call.id, call.name, json.dumps(decision.arguments))
            async for event in self._run_call(toolbox, call, run, tool_ctx, recorded, loop):
                yield event
            return
        reason = decision.message or "no reason given"
        output = {"error": f"A reviewer rejected this call: {reason}", "code": "APPROVAL_REJECTED"}
        async for event in self._refused(call, loop, output):
            yield event

    async def _refused(
        self, call: ToolCall, loop: _LoopState, output: dict[str, Any]
    ) -> AsyncIterator[EngineEvent]:
        """Answer ``call`` with the failure ``output`` without running it (a rejected
        approval, a tool the run does not offer): ``tool.started`` then ``tool.failed``."""
        span_id = str(uuid.uuid4())
        yield ToolStarted(tool=call.name, span_id=span_id, input=_input_of(call))
        yield ToolFinished(tool=call.name, span_id=span_id, output=output)
        loop.transcript.append(
            {"role": "tool", "tool_call_id": call.id, "content": _tool_content(output)}
        )
        if self._in_session:
            yield Transcript(tuple(loop.transcript))

    async def _call_tool(self, toolbox: Toolbox, call: ToolCall, tools: _Tools) -> Any:
        """One tool call under the toolpack's timeout for it (contract 7.3's per-tool table;
        ``settings.tool_timeout_seconds`` for tools outside it). Timeouts and a missing user
        scope become error envelopes. The first call makes the run's workspace (outside
        the tool's timeout)."""
        tool_ctx = await tools.context()
        if tool_ctx is None:
            return {"error": USER_SCOPE_ERROR, "code": "TOOL_EXECUTION_FAILED"}
        limit = float(toolbox.tool_timeout(call.name))
        try:
            return await asyncio.wait_for(toolbox.call(call.name, call.arguments, tool_ctx), limit)
        except TimeoutError:
            return {
                "error": f"{call.name} timed out after {limit:g} seconds",
                "code": "TOOL_TIMEOUT",
            }


# ---- helpers --------------------------------------------------------------------------


async def _workspace_root(ctx: RunContext) -> Path:
    """The run's workspace directory, made first if it is still pending."""
    if ctx.workspace_pending is not None:
        return await ctx.workspace_pending.ready()
    assert ctx.workspace is not None  # checked when the session started
    return ctx.workspace


class _Tools:
    """The run's server-side tool context (contract 7.2), built when the first tool runs,
    and the revisions the checkpoint tools record meanwhile (``recorded``, reported by the
    loop before the tool's result)."""

    def __init__(self, ctx: RunContext, checkpoints: CheckpointHost | None, metrics: Metrics):
        self.recorded: list[RevisionsRecorded] = []
        self._run = ctx
        self._checkpoints = checkpoints
        self._metrics = metrics
        self._context: ToolContext | None = None

    async def context(self) -> ToolContext | None:
        """The tool context, or None when the run has no user (tools need one).

        Raises:
            OSError (and what making the workspace raises): the workspace cannot be made.
        """
        ctx = self._run
        if ctx.user_id is None:
            return None
        if self._context is None:
            workspace = await asyncio.to_thread(Workspace, await _workspace_root(ctx))
            self._context = ToolContext(
                run_id=ctx.run_id,
                tenant_id=ctx.tenant_id,
                app_id=ctx.app_id,
                user_id=ctx.user_id,
                workspace=workspace,
                checkpoints=self._checkpoints,
                on_revisions=self._on_revisions,
                metrics=self._metrics,
                claim_token=ctx.claim_token,
                origin=WorkspaceOrigin(ctx.checkpoint_base),
            )
        return self._context

    def _on_revisions(self, checkpoint: uuid.UUID, result: uuid.UUID | None) -> None:
        self.recorded.append(RevisionsRecorded(checkpoint, result))


@dataclass(slots=True)
class _LoopState:
    """Where the agent loop stands: all a paused run needs to continue without asking the
    model again (stored as the run's checkpoint ``native``; docs/architecture.md).

    ``history``: system instructions and the run's chat history; ``transcript``: the
    model's turns and tool results since; ``tool_turns``: model turns that called tools
    (the contract 7.1 cap); ``pending``: the last turn's calls not yet answered, the first
    being the one a pause waits on; ``span``: the agent node's span id; ``files``: at a
    pause, the workspace's ``{path: text}`` (so the run continues on any node, and on its own
    node even after another run used the workspace meanwhile)."""

    history: list[dict[str, Any]]
    transcript: list[dict[str, Any]] = field(default_factory=list)
    tool_turns: int = 0
    pending: list[ToolCall] = field(default_factory=list)
    span: str = field(default_factory=lambda: str(uuid.uuid4()))
    files: dict[str, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form kept in Postgres (``agent_runs.checkpoint``)."""
        return {
            "version": STATE_VERSION,
            "history": self.history,
            "transcript": self.transcript,
            "tool_turns": self.tool_turns,
            "pending": [{"id": c.id, "name": c.name, "arguments": c.arguments}
                        for c in self.pending],
            "span": self.span,
            "files": self.files,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, state: Any) -> _LoopState:
        """Read :meth:`as_dict`'s form back.

        Raises:
            ValueError: not a state this version wrote.
        """
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ValueError("unknown engine state version")
        try:
            return cls(
                history=list(state["history"]),
                transcript=list(state["transcript"]),
                tool_turns=int(state["tool_turns"]),
                pending=[ToolCall(str(c["id"]), str(c["name"]), str(c["arguments"]))
                         for c in state["pending"]],
                span=str(state["span"]),
                files=_files_of(state.get("files")),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed engine state ({exc!r})") from None


def _files_of(value: Any) -> dict[str, str] | None:
    """A stored ``files`` map, checked to be ``{str: str}``.

    Raises:
        ValueError: anything else.
    """
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError("malformed workspace files")
    return dict(value)


def _start_state(ctx: RunContext) -> tuple[_LoopState, approvals.Decision | None]:
    """A fresh loop, or, for a run resumed from a pause on approval, the stored loop and
    the decision on its first pending call.

    Raises:
        ValueError: the stored state or the decision cannot be used (the run fails).
    """
    resume = ctx.resume
    stored = resume.checkpoint.get(STATE_KEY) if resume is not None else None
    if resume is None or stored is None:
        return _LoopState(_initial_history(ctx)), None
    loop = _LoopState.from_dict(stored)
    pending = approvals.pending_of(resume.checkpoint)
    decision = approvals.Decision.from_payload(resume.payload)
    if not loop.pending or pending is None:
        raise ValueError("the stored state has no pending tool call")
    if decision is None or decision.request_id != pending.get("request_id"):
        raise ValueError("no decision on the pending approval request")
    return loop, decision


def _pause(loop: _LoopState, call: ToolCall) -> Paused:
    """Pause before ``call`` until a person decides it (issue 12)."""
    request = approvals.PendingApproval(str(uuid.uuid4()), call.name, _input_of(call))
    return Paused(checkpoint={STATE_KEY: loop.as_dict()}, approval=request.as_dict())


def _initial_history(ctx: RunContext) -> list[dict[str, Any]]:
    """System instructions, then the run's normalised chat history (contract 5), which
    already ends with the prompt; a bare prompt when the history is empty. A session run's
    history also holds earlier tool calls and results (:mod:`runtime.sessions.history`)."""
    history: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM_INSTRUCTIONS}]
    messages = [item for m in ctx.messages if (item := _history_item(m)) is not None]
    if not messages and ctx.prompt.strip():
        messages = [{"role": "user", "content": ctx.prompt}]
    return history + messages


def _history_item(message: Any) -> dict[str, Any] | None:
    """One history message as the model gets it: ``{role, content}``, plus ``tool_calls``
    on an assistant message and ``tool_call_id`` on a tool result; None to leave it out."""
    if not isinstance(message, dict) or not message.get("role"):
        return None
    role, content = message["role"], message.get("content")
    if role == "tool":
        if not message.get("tool_call_id"):
            return None
        return {"role": "tool", "tool_call_id": message["tool_call_id"], "content": content or ""}
    if role == "assistant" and message.get("tool_calls"):
        return {"role": "assistant", "content": content or None,
                "tool_calls": message["tool_calls"]}  # fmt: skip
    if not content:
        return None
    return {"role": role, "content": content}


def _input_of(call: ToolCall) -> Any:
    """The tool input for ``tool.started``: parsed JSON arguments, else the raw string."""
    try:
        return json.loads(call.arguments) if call.arguments.strip() else {}
    except ValueError:
        return call.arguments


def _tool_content(output: Any) -> str:
    text = json.dumps(output, ensure_ascii=False, default=str)
    if len(text) <= MAX_TOOL_MESSAGE_CHARS:
        return text
    return text[:MAX_TOOL_MESSAGE_CHARS] + " ... [truncated: tool output too long]"


def _signature(calls: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """A turn's calls as comparable ``(name, arguments)`` pairs (arguments parsed when
    they are JSON, so key order and spacing do not matter)."""
    out = []
    for call in calls:
        function = call.get("function") or {}
        raw = function.get("arguments") or ""
        try:
            arguments = json.loads(raw) if raw.strip() else {}
        except ValueError:
            arguments = raw
        out.append((str(function.get("name")), arguments))
    return out


def _repeats(transcript: list[dict[str, Any]], calls: list[ToolCall]) -> bool:
    """Whether ``calls`` are exactly the calls of each of the last
    ``REPEATED_CALLS_LIMIT - 1`` model turns (with nothing but their results between)."""
    current = _signature([call.as_message_item() for call in calls])
    earlier = [m for m in transcript if m.get("role") == "assistant"]
    needed = REPEATED_CALLS_LIMIT - 1
    if len(earlier) < needed:
        return False
    return all(_signature(m.get("tool_calls") or []) == current for m in earlier[-needed:])


def _repeat_text(calls: list[ToolCall]) -> str:
    names = ", ".join(sorted({call.name for call in calls}))
    return (
        f"I stopped because I was repeating the same tool call ({names}) with the same "
        "arguments without making progress. The changes made so far are kept; please "
        "rephrase the request or name the file and the change."
    )


def _not_offered(tool: str) -> dict[str, Any]:
    return {
        "error": f"{tool} is not offered to this run; call one of the tools you were given",
        "code": NOT_ALLOWED,
    }


def _limit_text(limit: int) -> str:
    return (
        f"I stopped after {limit} rounds of tool calls (the limit for one run) before "
        "finishing. The changes made so far are kept; ask me to continue."
    )


def _output(text: str, loop: _LoopState, reason: str) -> dict[str, Any]:
    """The final output: ``last_agent_output`` and ``messages`` (contract 3.5 reads them;
    ``messages`` is the conversation without the system instructions), the number of
    tool-calling turns and why the loop stopped (``stop`` or ``max_tool_iterations``)."""
    return {
        "last_agent_output": text,
        "messages": [*loop.history[1:], *loop.transcript],
        "iterations": loop.tool_turns,
        "stopped_reason": reason,
    }


def _model_usage(model: str, seconds: float, usage: dict[str, Any] | None) -> UsageReported:
    """The usage of one completed model request: counts only as the endpoint reported
    them in the stream's usage chunk (none when it sent none)."""
    prompt, completion, total = openai_counts(usage)
    return UsageReported("model", model, seconds, prompt, completion, total)


def _failed(code: str, message: str) -> Failed:
    return Failed(message, [{"code": code, "message": message}])
