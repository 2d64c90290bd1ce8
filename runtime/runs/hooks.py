"""Default :class:`runtime.runs.deps.RunHooks`: the engine's context for a run and the
auto-apply of its finished workspace."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runtime.checkpoints import Checkpoints, workspace_origin
from runtime.engine import Engine, PendingWorkspace, ResumeState, RunContext
from runtime.model_credentials import ModelTargets
from runtime.runs import resume_keys
from runtime.runs.deps import AppliedRevision
from runtime.sessions.history import SessionHistory


class StoreRunHooks:
    """Builds run contexts from Postgres and the workspace; applies finished workspaces.

    Args:
        models: the run's pinned model with its credentials.
        engines: to know which engines work on a workspace.
        checkpoints: workspaces and auto-apply.
        history: a session run's earlier turns (default: read from the checkpoints'
            database, compacted by its settings' message budget).
    """

    def __init__(
        self,
        models: ModelTargets,
        engines: Mapping[str, Engine],
        checkpoints: Checkpoints,
        history: SessionHistory | None = None,
    ) -> None:
        self._models = models
        self._engines = engines
        self.checkpoints = checkpoints
        self.history = history or SessionHistory(
            lambda: checkpoints.db, checkpoints.settings.message_budget_chars
        )

    def _uses_workspace(self, row: dict[str, Any]) -> bool:
        engine = self._engines.get(row["execution_engine"])
        return engine is not None and engine.uses_workspace

    def has_workspace(self, row: dict[str, Any], ctx: RunContext | None) -> bool:
        """Whether this execution of the run has a workspace to apply or remove: its engine
        uses one and it was made (a lazily made one, ``ctx.workspace_untouched``, may not
        be). Without one :meth:`auto_apply` applies nothing and :meth:`release` removes
        nothing. No I/O (the actor asks on its own thread to skip both loop hops)."""
        return self._uses_workspace(row) and not (ctx is not None and ctx.workspace_untouched)

    def _workspace(self, row: dict[str, Any], fresh: bool) -> PendingWorkspace | None:
        """A fresh run of an engine that makes its workspace on first use: the pending
        workspace (nothing on disk yet, made from :func:`workspace_origin` when it is);
        None when it is to be made now.

        A run queued again after an attempt that made a checkpoint (a requeue or
        hand-back) already produced a revision, which its auto-apply reports (contract
        3.3) even when this attempt touches no file: its workspace is made now, so
        :meth:`has_workspace` holds and auto-apply runs."""
        engine = self._engines.get(row["execution_engine"])
        if not fresh or engine is None or not engine.lazy_workspace:
            return None
        if row["result_revision_id"] is not None:
            return None
        checkpoints = self.checkpoints
        return PendingWorkspace(
            checkpoints.workspaces.path(row["id"]),
            lambda: checkpoints.prepare(row, fresh=True),
        )

    async def build_context(self, row: dict[str, Any], attempt: int) -> RunContext:
        """The run's engine context: contract 4's pinned model (the run's resolved id, never
        the tenant's current default), its workspace and, after a pause, the stored payload
        and engine checkpoint. A session run's messages are the session's conversation
        (:mod:`runtime.sessions.history`), read when it starts."""
        model = await self._models.target(row["resolved_model_id"])
        resume = None
        if row["checkpoint"] is not None:
            payload = resume_keys.engine_payload(row["resume_payload"])  # without the keys
            resume = ResumeState(payload=payload, checkpoint=row["checkpoint"])
        workspace = pending = None
        if self._uses_workspace(row):
            fresh = attempt == 0 and resume is None
            pending = self._workspace(row, fresh)
            if pending is not None:
                workspace = pending.path
            else:
                workspace = await self.checkpoints.prepare(row, fresh=fresh)
        input_params = row["input_params"]
        if row.get("session_id") is not None:
            input_params = {**input_params, "messages": await self.history.messages_for(row)}
        return RunContext(
            run_id=row["id"],
            tenant_id=row["tenant_id"],
            app_id=row["published_app_id"],
            user_id=row["user_id"],
            engine=row["execution_engine"],
            input_params=input_params,
            model=model,
            workspace=workspace,
            engine_run_ref=row["engine_run_ref"],
            resume=resume,
            attempt=attempt,
            session_id=row.get("session_id"),
            claim_token=row["claim_token"],
            # What the workspace was made from or last synced with (one rule with it).
            checkpoint_base=workspace_origin(row),
            workspace_pending=pending,
        )

    async def auto_apply(
        self, row: dict[str, Any], ctx: RunContext | None, *, token: int
    ) -> AppliedRevision | None:
        """Contract 8 auto-apply for engines with a workspace, under the owner's claim
        token; see :meth:`runtime.checkpoints.Checkpoints.auto_apply`. A workspace that was
        never made (``ctx.workspace_untouched``) has no change: None, without reading
        anything."""
        if not self.has_workspace(row, ctx):
            return None
        return await self.checkpoints.auto_apply(row, token=token)

    async def release(self, row: dict[str, Any], ctx: RunContext | None = None) -> None:
        """Remove a terminal run's workspace (runtime/run_workspaces.py); nothing to do
        when this execution's workspace was never made (``ctx.workspace_untouched``)."""
        if self.has_workspace(row, ctx):
            await self.checkpoints.release(row["id"])
