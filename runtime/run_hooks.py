"""Default :class:`runtime.actors.deps.RunHooks`: the engine's context for a run and the
auto-apply of its finished workspace."""

from __future__ import annotations

from typing import Any

from runtime.actors.deps import AppliedRevision
from runtime.engine import ModelTarget, ResumeState, RunContext
from runtime.settings import Settings
from storage import models as models_store
from storage.database import Database


class StoreRunHooks:
    """Builds run contexts from Postgres (pinned model binding, resume state)."""

    def __init__(self, db_getter: Any, settings: Settings) -> None:
        self._db_getter = db_getter
        self.settings = settings

    @property
    def db(self) -> Database:
        db: Database = self._db_getter()
        return db

    async def build_context(self, row: dict[str, Any], attempt: int) -> RunContext:
        """The run's engine context: contract 4's pinned model (the run's resolved id, never
        the tenant's current default) and, after a pause, the stored payload + checkpoint."""
        model = None
        if row["resolved_model_id"] is not None:
            binding = await models_store.get_binding(self.db, row["resolved_model_id"])
            if binding is not None:
                model = ModelTarget(
                    model_id=row["resolved_model_id"],
                    provider=binding.provider,
                    provider_model_id=binding.provider_model_id,
                    base_url=binding.base_url,
                    api_key_env=binding.api_key_env,
                )
        resume = None
        if row["checkpoint"] is not None:
            resume = ResumeState(payload=row["resume_payload"] or {}, checkpoint=row["checkpoint"])
        return RunContext(
            run_id=row["id"],
            tenant_id=row["tenant_id"],
            app_id=row["published_app_id"],
            user_id=row["user_id"],
            engine=row["execution_engine"],
            input_params=row["input_params"],
            model=model,
            engine_run_ref=row["engine_run_ref"],
            resume=resume,
            attempt=attempt,
        )

    async def auto_apply(self, row: dict[str, Any], ctx: RunContext | None) -> AppliedRevision | None:
        return None
