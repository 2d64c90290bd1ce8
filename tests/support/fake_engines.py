"""Engines injected at the engine boundary for API tests of engine-specific rules
(preflight errors, fail-closed cancel). Real engines have their own end-to-end tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from runtime.engine import (
    CancelOutcome,
    Completed,
    Delta,
    Engine,
    EngineError,
    EngineEvent,
    EngineRef,
    EngineSession,
    PreflightRequest,
    RunContext,
)


class FakeOpenCodeEngine(Engine):
    """Behaves as configured: ``preflight_error``, ``raise_message`` (the stream raises),
    ``hang`` (streams one delta then waits), ``cancel_outcome``."""

    name = "opencode"

    def __init__(
        self,
        *,
        preflight_error: EngineError | None = None,
        raise_message: str | None = None,
        hang: bool = False,
        cancel_outcome: CancelOutcome | None = None,
    ) -> None:
        self.preflight_error = preflight_error
        self.raise_message = raise_message
        self.hang = hang
        self.cancel_outcome = cancel_outcome or CancelOutcome(True)
        self.contexts: list[RunContext] = []
        self.cancel_calls = 0

    async def preflight(self, request: PreflightRequest) -> dict[str, Any]:
        if self.preflight_error is not None:
            raise self.preflight_error
        return {"opencode_workspace_path": "/fake/workspace"}

    def open(self, ctx: RunContext) -> EngineSession:
        self.contexts.append(ctx)
        return _Session(self)


class _Session(EngineSession):
    def __init__(self, engine: FakeOpenCodeEngine) -> None:
        self.engine = engine

    async def events(self) -> AsyncIterator[EngineEvent]:  # type: ignore[override]
        yield EngineRef("ses_fake")
        if self.engine.raise_message:
            raise RuntimeError(self.engine.raise_message)
        yield Delta("working")
        if self.engine.hang:
            await asyncio.Event().wait()
        yield Completed({"last_agent_output": "done"})

    async def cancel(self) -> CancelOutcome:
        self.engine.cancel_calls += 1
        return self.engine.cancel_outcome
