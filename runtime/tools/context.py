"""What a tool knows about its caller: built server-side only (docs/design.md 7 and 8.7).

A model's tool arguments never reach these fields: ``run_id``, ``tenant_id``, ``app_id``,
``user_id`` or ``context`` keys in the arguments are ignored by the argument normaliser.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from runtime.metrics import Metrics
from runtime.workspace import Workspace


class CheckpointHost(Protocol):
    """Creates and restores checkpoint revisions for the tools (contract 7.3).

    Implemented by the storage-aware side; the toolpack never touches the database.
    Failures are raised as :class:`runtime.tools.errors.ToolError` (or
    :class:`PermissionError` for a checkpoint of another app/tenant); the toolpack turns
    them into envelopes.
    """

    async def create_checkpoint(self, ctx: ToolContext, entry_file: str | None) -> dict[str, Any]:
        """Snapshot ``ctx.workspace`` into a new draft revision (merged three-way onto the
        draft when it moved since ``ctx.origin``) and report it as the run's checkpoint
        (:meth:`ToolContext.record_revisions`). ``entry_file`` is already normalised by
        the path policy.

        Returns:
            ``{checkpoint_revision_id, created_at, file_count, entry_file}``, plus
            ``merged_onto_revision_id`` when merged.

        Raises:
            ToolError: ``REVISION_CONFLICT`` (overlapping changes), ``RUN_TAKEN_OVER``.
        """
        ...

    async def restore_checkpoint(self, ctx: ToolContext, revision_id: str) -> dict[str, Any]:
        """Create a new draft from ``revision_id``'s files, re-sync the workspace and report
        the revisions (:meth:`ToolContext.record_revisions`).

        Returns:
            ``{restored_revision_id, from_checkpoint_revision_id, entry_file, file_count}``.

        Raises:
            PermissionError: the revision belongs to another app or tenant.
        """
        ...


@dataclass(slots=True)
class WorkspaceOrigin:
    """The revision whose files the run's workspace held when it was made or last synced
    with the app's draft (a checkpoint the agent made or restored): the base of the
    three-way merge of the agent's next checkpoint (:mod:`runtime.merge`). Mutable: the
    checkpoint tools move it on within one engine session.

    Attributes:
        revision_id: that revision (None: unknown, then a checkpoint is not merged).
    """

    revision_id: uuid.UUID | None = None


@dataclass(frozen=True)
class ToolContext:
    """The server-side identity of a tool call.

    Attributes:
        run_id: the calling run.
        tenant_id: the run's tenant.
        app_id: the run's app.
        user_id: the run's user actor.
        workspace: the run's own workspace every file tool acts on.
        checkpoints: checkpoint backend, or None (checkpoint tools then fail cleanly).
        on_revisions: told ``(checkpoint_revision_id, result_revision_id or None)`` when a
            checkpoint tool made a revision the run must record; the engine turns it into
            an event for the run's actor (no tool or engine writes the run's row).
        metrics: where sandboxed command durations are recorded, or None.
        claim_token: the run's fencing token this execution holds (docs/design.md 9): a
            revision a checkpoint tool makes is refused once another node took the run
            (None: not fenced, tests without a run row).
        origin: see :class:`WorkspaceOrigin`.
    """

    run_id: uuid.UUID
    tenant_id: uuid.UUID
    app_id: uuid.UUID
    user_id: uuid.UUID
    workspace: Workspace
    checkpoints: CheckpointHost | None = None
    on_revisions: Callable[[uuid.UUID, uuid.UUID | None], None] | None = None
    metrics: Metrics | None = None
    claim_token: int | None = None
    origin: WorkspaceOrigin = field(default_factory=WorkspaceOrigin)

    def record_revisions(self, checkpoint: uuid.UUID, result: uuid.UUID | None) -> None:
        """Report a checkpoint (and maybe result) revision for the run (contract 7.3)."""
        if self.on_revisions is not None:
            self.on_revisions(checkpoint, result)
