"""Default :class:`runtime.runs.deps.RunHooks`: the engine's context for a run and the
auto-apply of its finished workspace."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from runtime.checkpoints import Checkpoints
from runtime.engine import Engine, ModelTarget, ResumeState, RunContext
from runtime.runs.deps import AppliedRevision
from storage import models as models_store
from storage.database import Database


async def model_target(db: Database, model_id: uuid.UUID | None) -> ModelTarget | None:
    """How to reach a registry model: its best enabled binding (None without one)."""
    if model_id is None:
        return None
    binding = await models_store.get_binding(db, model_id)
    if binding is None:
        return None
    return ModelTarget(
        model_id=model_id,
        provider=binding.provider,
        provider_model_id=binding.provider_model_id,
        base_url=binding.base_url,
        api_key_env=binding.api_key_env,
    )


class StoreRunHooks:
    """Builds run contexts from Postgres and the workspace; applies finished workspaces.

    Args:
        db: returns the started database.
        engines: to know which engines work on a workspace.
        checkpoints: workspaces and auto-apply.
    """

    def __init__(
        self,
        db: Callable[[], Database],
        engines: Mapping[str, Engine],
        checkpoints: Checkpoints,
    ) -> None:
        self._db = db
        self._engines = engines
        self.checkpoints = checkpoints

    def _uses_workspace(self, row: dict[str, Any]) -> bool:
        engine = self._engines.get(row["execution_engine"])
        return engine is not None and engine.uses_workspace

    async def build_context(self, row: dict[str, Any], attempt: int) -> RunContext:
        """The run's engine context: contract 4's pinned model (the run's resolved id, never
        the tenant's current default), its workspace and, after a pause, the stored payload
        and engine checkpoint."""
        model = await model_target(self._db(), row["resolved_model_id"])
        resume = None
        if row["checkpoint"] is not None:
            resume = ResumeState(payload=row["resume_payload"] or {}, checkpoint=row["checkpoint"])
        workspace = None
        if self._uses_workspace(row):
            fresh = attempt == 0 and resume is None
            workspace = await self.checkpoints.prepare(row, fresh=fresh)
        return RunContext(
            run_id=row["id"],
            tenant_id=row["tenant_id"],
            app_id=row["published_app_id"],
            user_id=row["user_id"],
            engine=row["execution_engine"],
            input_params=row["input_params"],
            model=model,
            workspace=workspace,
            engine_run_ref=row["engine_run_ref"],
            resume=resume,
            attempt=attempt,
        )

    async def auto_apply(
        self, row: dict[str, Any], ctx: RunContext | None
    ) -> AppliedRevision | None:
        """Contract 8 auto-apply for engines with a workspace; see
        :meth:`runtime.checkpoints.Checkpoints.auto_apply`."""
        if not self._uses_workspace(row):
            return None
        return await self.checkpoints.auto_apply(row)
