"""The default model (docs/design.md section 5; native engine issue item 7).

Two managed registrations, both global default chat models:

- the operator's endpoint, when ``RUNWRIGHT_DEFAULT_MODEL_BASE_URL`` and
  ``RUNWRIGHT_DEFAULT_MODEL_ID`` are set: registered at start-up, or updated to match;
- otherwise, on a machine whose registry holds no model (or only the one Runwright manages),
  the local model (runtime.local_model) behind llama-cpp-python's OpenAI-compatible
  server, started on loopback.

A model an operator registers with ``runwright model add`` or ``POST /admin/models`` is
never touched, and its presence keeps the local model from starting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from runtime.local_model import (
    INSTALL_HINT,
    LOCAL_MODEL_ALIAS,
    LocalModelError,
    LocalModelServer,
    LocalModelUnavailable,
)
from runtime.local_weights import LOCAL_WEIGHTS
from runtime.settings import Settings
from storage import models as models_store
from storage.database import Database
from storage.models import BindingSpec

log = logging.getLogger(__name__)

LOCAL_PROVIDER = "runwright-local"
LOCAL_MODEL_NAME = f"{LOCAL_WEIGHTS.name} (local)"
CONFIGURED_PROVIDER = "runwright-configured"


class DefaultModel:
    """A lifespan component: :meth:`start` after migrations, :meth:`stop` at shutdown.

    Never fails the service start: when no model can be provided it logs what to do
    (``problem``) and runs fail with ``CODING_AGENT_MODEL_UNAVAILABLE`` until one is.
    """

    def __init__(self, db: Callable[[], Database], settings: Settings) -> None:
        self._db = db
        self.settings = settings
        self.server: LocalModelServer | None = None
        self.problem: str | None = None

    async def start(self) -> None:
        s = self.settings
        if s.default_model_base_url is not None and s.default_model_id is not None:
            await self._register(
                CONFIGURED_PROVIDER, f"{s.default_model_id} (configured)",
                s.default_model_base_url, s.default_model_id, s.default_model_api_key_env,
            )  # fmt: skip
            return
        if not s.local_model_autostart:
            return
        db = self._db()
        managed = await models_store.bindings_by_provider(db, LOCAL_PROVIDER)
        if not managed and await models_store.any_model_exists(db):
            return  # the operator chose their own models
        server = LocalModelServer(port=s.local_model_port, models_dir=Path(s.data_dir) / "models")
        try:
            await server.start()
        except LocalModelUnavailable as exc:
            self.problem = f"no model is registered and the local model is missing: {exc}"
            log.warning("%s. To fix: %s, or register a model with `runwright model add`.",
                        self.problem, INSTALL_HINT)  # fmt: skip
            return
        except LocalModelError as exc:
            self.problem = f"the local model server failed to start: {exc}"
            log.error("%s", self.problem)
            return
        self.server = server
        await self._register(LOCAL_PROVIDER, LOCAL_MODEL_NAME, server.base_url,
                             LOCAL_MODEL_ALIAS, None)  # fmt: skip
        log.info("local model %s serving at %s", LOCAL_MODEL_ALIAS, server.base_url)

    async def _register(
        self, provider: str, name: str, base_url: str, model_id: str, key_env: str | None
    ) -> None:
        """Create the managed global default model, or re-point its existing binding."""
        db = self._db()
        existing = await models_store.bindings_by_provider(db, provider)
        for binding in existing:
            await models_store.set_binding_endpoint(
                db, binding.id, base_url=base_url, provider_model_id=model_id, api_key_env=key_env
            )
        if not existing:
            spec = BindingSpec(provider=provider, provider_model_id=model_id, base_url=base_url,
                               api_key_env=key_env)  # fmt: skip
            await models_store.create_model(
                db, tenant_id=None, name=name, is_default=True, bindings=[spec]
            )

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            await server.stop()
