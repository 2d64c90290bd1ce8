"""The scripted engine: deterministic runs for tests and benchmarks (docs/design.md section 5).

Off unless ``RUNWRIGHT_SCRIPTED_ENGINE_ENABLED`` is set; never chosen unless a run asks for
``engine: "scripted"``. A run's script is a list of steps, each an object with one key:

- ``{"delta": "text"}`` / ``{"deltas": ["a", "b"]}``: assistant text chunks
- ``{"tool": name, "input": {...}, "output": {...}}``: a tool call (an output with a truthy
  ``error`` becomes ``tool.failed``)
- ``{"plan": {...}}``: a ``plan.updated`` payload
- ``{"sleep_ms": N}``: wait N ms (cancellable)
- ``{"fail": "message"}``: end with an engine failure
- ``{"raise": "message"}``: raise from the engine (the exception path)
- ``{"pause": {...}}``: pause; on resume the script continues after this step and first
  emits ``plan.updated {"resumed_with": <payload>}``
- ``{"crash_actor": true}``: on the first attempt only, yield an object the actor cannot
  handle, so the actor crashes and the supervisor restarts it
- ``{"complete": {...}}``: end with this output (default at the end: ``{}``)
- ``{"hang": true}``: wait until cancelled

Every step may carry ``"delay_ms"`` applied before it. Sessions record what happened in
:attr:`ScriptedEngine.journal` so tests can observe cancellation.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import AsyncIterator
from typing import Any

from runtime.engine import (
    Completed,
    Delta,
    Engine,
    EngineEvent,
    EngineSession,
    Failed,
    Paused,
    PlanUpdated,
    RunContext,
    ToolFinished,
    ToolStarted,
)

STEP_KEYS = frozenset(
    {"delta", "deltas", "tool", "plan", "sleep_ms", "fail", "raise", "pause", "crash_actor",
     "complete", "hang"}
)  # fmt: skip


class ScriptError(ValueError):
    """A script step is malformed (reported as a 422 at run creation)."""


def validate_script(script: Any) -> list[dict[str, Any]]:
    """Check a script's shape; return it as a list of step dicts.

    Raises:
        ScriptError: not a list of objects each naming exactly one known step.
    """
    if not isinstance(script, list):
        raise ScriptError("script must be a list of steps")
    for index, step in enumerate(script):
        if not isinstance(step, dict):
            raise ScriptError(f"script step {index} must be an object")
        keys = set(step) - {"delay_ms", "input", "output"}
        if len(keys) != 1 or not keys <= STEP_KEYS:
            raise ScriptError(f"script step {index} must name exactly one of {sorted(STEP_KEYS)}")
        (kind,) = keys
        problem = _value_problem(kind, step[kind]) or (
            "delay_ms" in step and _value_problem("sleep_ms", step["delay_ms"])
        )
        if problem:
            raise ScriptError(f"script step {index}: {problem}")
    return script


def _value_problem(kind: str, value: Any) -> str | None:
    """What is wrong with a step's value, or None."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "sleep_ms" and not (number and 0 <= value <= 3_600_000):
        return "a duration in ms must be a number from 0 to 3600000"
    if kind in ("delta", "fail", "raise", "tool") and not isinstance(value, str):
        return f"{kind} must be a string"
    if kind == "deltas" and not (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    ):
        return "deltas must be a list of strings"
    if kind in ("plan", "pause", "complete") and not isinstance(value, dict):
        return f"{kind} must be an object"
    return None


class ActorFault:
    """An event no actor understands: the scripted way to crash a run's actor."""


class ScriptedSession(EngineSession):
    def __init__(self, engine: ScriptedEngine, ctx: RunContext) -> None:
        self._engine = engine
        self._ctx = ctx

    async def events(self) -> AsyncIterator[EngineEvent]:  # type: ignore[override]
        ctx = self._ctx
        script: list[dict[str, Any]] = ctx.input_params.get("script") or []
        start = 0
        if ctx.resume is not None:
            start = int(ctx.resume.checkpoint.get("position", 0))
            yield PlanUpdated({"resumed_with": ctx.resume.payload})
        self._engine.journal.append((ctx.run_id, "started"))
        try:
            for position in range(start, len(script)):
                step = script[position]
                if step.get("delay_ms"):
                    await asyncio.sleep(step["delay_ms"] / 1000)
                for event in await self._step(step, position):
                    yield event
                    if isinstance(event, (Completed, Failed, Paused)):
                        return
            yield Completed({})
        except asyncio.CancelledError:
            self._engine.journal.append((ctx.run_id, "cancelled"))
            raise

    async def _step(self, step: dict[str, Any], position: int) -> list[Any]:
        if "delta" in step:
            return [Delta(str(step["delta"]))]
        if "deltas" in step:
            return [Delta(str(chunk)) for chunk in step["deltas"]]
        if "tool" in step:
            span = uuid.uuid4().hex[:12]
            return [
                ToolStarted(step["tool"], span, step.get("input", {})),
                ToolFinished(step["tool"], span, step.get("output", {})),
            ]
        if "plan" in step:
            return [PlanUpdated(dict(step["plan"]))]
        if "sleep_ms" in step:
            await asyncio.sleep(step["sleep_ms"] / 1000)
            return []
        if "fail" in step:
            return [Failed(str(step["fail"]))]
        if "raise" in step:
            raise RuntimeError(str(step["raise"]))
        if "pause" in step:
            return [Paused(checkpoint={"position": position + 1}, output=dict(step["pause"]))]
        if "crash_actor" in step:
            return [ActorFault()] if self._ctx.attempt == 0 else []
        if "complete" in step:
            return [Completed(dict(step["complete"]))]
        if "hang" in step:
            await asyncio.Event().wait()
        return []


class ScriptedEngine(Engine):
    """Runs each run's ``input_params["script"]``."""

    name = "scripted"
    uses_workspace = False  # scripts touch no files: no workspace, no auto-apply
    preflight_uses_model = False  # the default preflight; scripts use no model

    def __init__(self) -> None:
        # What sessions did, newest last; bounded so a long benchmark cannot grow it forever.
        self.journal: collections.deque[tuple[uuid.UUID, str]] = collections.deque(maxlen=10_000)

    def open(self, ctx: RunContext) -> EngineSession:
        return ScriptedSession(self, ctx)
