"""What a RunActor is given: shared collaborators, built once by the service."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from runtime.bridge import LoopPort
from runtime.engine import Engine, RunContext
from runtime.metrics import Metrics
from runtime.runs.broker import Broker
from runtime.runs.writer import EventWriter
from runtime.settings import Settings
from storage.runs import RunStore


@dataclass(frozen=True, slots=True)
class AppliedRevision:
    """The revision (and checkpoint) a completed run produced (contract 3.3, 8)."""

    revision_id: uuid.UUID
    checkpoint_id: uuid.UUID
    entry_file: str
    file_count: int

    def revision_payload(self) -> dict[str, Any]:
        return {
            "revision_id": str(self.revision_id),
            "entry_file": self.entry_file,
            "file_count": self.file_count,
        }

    def checkpoint_payload(self) -> dict[str, Any]:
        return {"checkpoint_id": str(self.checkpoint_id), "revision_id": str(self.revision_id)}


class RunHooks(Protocol):
    """Run-specific work done on the loop on behalf of the actor."""

    def has_workspace(self, row: dict[str, Any], ctx: RunContext | None) -> bool:
        """Whether this execution has a workspace to apply or remove; without one
        :meth:`auto_apply` applies nothing and :meth:`release` removes nothing, so the
        actor skips both (no loop hop). Called on the actor's thread: no I/O."""

    async def build_context(self, row: dict[str, Any], attempt: int) -> RunContext:
        """The engine's view of the run: pinned model target, workspace, resume state."""

    async def auto_apply(
        self, row: dict[str, Any], ctx: RunContext | None, *, token: int
    ) -> AppliedRevision | None:
        """Turn the finished workspace into a draft revision + checkpoint under claim token
        ``token``; None when nothing changed (docs/design.md 8.11). Raises on validation
        failure, and :class:`storage.runs.RunTakenOver` when fenced."""

    async def release(self, row: dict[str, Any], ctx: RunContext | None = None) -> None:
        """The run is terminal: remove its workspace (no-op when it has none); ``ctx``:
        the context its last execution had on this node, if any."""


@dataclass(frozen=True, slots=True)
class RunDeps:
    """Collaborators shared by every RunActor of a process."""

    port: LoopPort
    runs: RunStore
    writer: EventWriter
    broker: Broker
    engines: Mapping[str, Engine]
    hooks: RunHooks
    node_id: str
    lease_seconds: float
    coalesce_seconds: float
    cancel_grace_seconds: float = 10.0
    # Applied to every failure text a tenant can read (run.error, run.failed diagnostics):
    # server paths out (runtime.redact).
    redact: Callable[[str], str] = str
    metrics: Metrics = field(default_factory=Metrics)  # this app's (runtime.metrics)
    # The toolpack's settings, for edited arguments of an approval (checked at resume by the
    # tools' own rules: allowlist, size limits); None: the defaults.
    tool_settings: Settings | None = None
