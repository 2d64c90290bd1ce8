"""The default model of a fresh machine (DESIGN.md section 5; native engine issue item 7).

When the registry holds no model at all, or only the one Runwright manages itself, the
service starts SmolLM2 behind llama-cpp-python's OpenAI-compatible server on loopback and
registers (or re-points) it as the global default chat model. Operators who register any
other model (``runwright model add`` or ``POST /admin/models``) never get it started.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from runtime.local_model import (
    INSTALL_HINT,
    LOCAL_MODEL_ALIAS,
    LocalModelError,
    LocalModelServer,
    LocalModelUnavailable,
)
from runtime.settings import Settings
from storage import models as models_store
from storage.database import Database
from storage.models import BindingSpec

log = logging.getLogger(__name__)

LOCAL_PROVIDER = "runwright-local"
LOCAL_MODEL_NAME = "SmolLM2-135M-Instruct (local)"


class DefaultModel:
    """A lifespan component: :meth:`start` after migrations, :meth:`stop` at shutdown.

    Never fails the service start: when the model cannot be started it logs what to do
    and runs fail with ``CODING_AGENT_MODEL_UNAVAILABLE`` until a model is registered.
    """

    def __init__(self, db: Callable[[], Database], settings: Settings) -> None:
        self._db = db
        self.settings = settings
        self.server: LocalModelServer | None = None
        self.problem: str | None = None

    async def start(self) -> None:
        if not self.settings.local_model_autostart:
            return
        db = self._db()
        managed = await models_store.bindings_by_provider(db, LOCAL_PROVIDER)
        if not managed and await models_store.any_model_exists(db):
            return  # the operator chose their own models
        server = LocalModelServer(port=self.settings.local_model_port)
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
        if managed:
            for binding in managed:
                await models_store.set_binding_base_url(db, binding.id, server.base_url)
        else:
            await models_store.create_model(
                db,
                tenant_id=None,
                name=LOCAL_MODEL_NAME,
                is_default=True,
                bindings=[
                    BindingSpec(
                        provider=LOCAL_PROVIDER,
                        provider_model_id=LOCAL_MODEL_ALIAS,
                        base_url=server.base_url,
                    )
                ],
            )
        log.info("local model %s serving at %s", LOCAL_MODEL_ALIAS, server.base_url)

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            await server.stop()
