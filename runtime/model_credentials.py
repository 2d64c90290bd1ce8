"""A run's model binding with its credentials: who may supply a key, and from where.

Issue 9 item 2 and docs/security.md ("Model credentials"):

- A tenant's model sends only the key its owner stored (sealed at rest, opened here). It
  never reads the server's environment: a tenant binding that names ``api_key_env`` (kept
  from before migration 0003) is refused at run time, without looking the variable up.
- A global (operator) model may send a sealed key, or the value of an environment variable
  the operator allows (``RUNWRIGHT_MODEL_KEY_ENV_ALLOWLIST``, plus
  ``RUNWRIGHT_DEFAULT_MODEL_API_KEY_ENV``). A name outside the list and an unset variable
  give the same message, so no error tells whether a variable exists.

Nothing here raises for a bad credential: the problem travels as
:attr:`runtime.engine.ModelTarget.credential_error` and the engine fails the run with it
before connecting (run creation must never answer 500 for it).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Mapping

from runtime.engine import ModelTarget
from runtime.secret_box import SecretBox, SecretBoxError
from runtime.settings import Settings
from storage import models as models_store
from storage.database import Database
from storage.models import Binding

__all__ = [
    "KEY_UNAVAILABLE",
    "KEY_UNREADABLE",
    "TENANT_KEY_ENV_REFUSED",
    "ModelTargets",
    "key_context",
]

log = logging.getLogger(__name__)

KEY_UNAVAILABLE = (
    "the model's API key is not available: its key variable is not allowed by the operator "
    "or not set"
)
TENANT_KEY_ENV_REFUSED = (
    "tenant models cannot take their API key from the server's environment (api_key_env); "
    "set the model's api_key instead"
)
KEY_UNREADABLE = (
    "the model's stored API key cannot be decrypted with this server's secrets key; "
    "set the model's api_key again"
)


def key_context(model_id: uuid.UUID, base_url: str) -> bytes:
    """The associated data a model key is sealed with: the key opens only for the model
    and endpoint it was given for (a ciphertext copied elsewhere does not decrypt)."""
    return b"runwright/model-key/v1\0" + model_id.bytes + base_url.encode()


class ModelTargets:
    """Builds :class:`ModelTarget` values for registry models.

    Args:
        db: returns the started database.
        box: returns the started :class:`SecretBox`.
        settings: the key-variable allow-list.
        environ: where allowed key variables are read (default ``os.environ``).
    """

    def __init__(
        self,
        db: Callable[[], Database],
        box: Callable[[], SecretBox],
        settings: Settings,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._db = db
        self._box = box
        self._settings = settings
        self._environ = os.environ if environ is None else environ

    async def target(self, model_id: uuid.UUID | None) -> ModelTarget | None:
        """The model's best enabled binding with its credentials (None without one)."""
        if model_id is None:
            return None
        found = await models_store.get_run_binding(self._db(), model_id)
        if found is None:
            return None
        binding, owner = found
        trusted = owner is None
        api_key, key_env, problem = self._credentials(binding, trusted=trusted)
        return ModelTarget(
            model_id=model_id,
            provider=binding.provider,
            provider_model_id=binding.provider_model_id,
            base_url=binding.base_url,
            api_key_env=key_env,
            api_key=api_key,
            operator_trusted=trusted,
            credential_error=problem,
        )

    def _credentials(
        self, binding: Binding, *, trusted: bool
    ) -> tuple[str | None, str | None, str | None]:
        """``(api_key, api_key_env, problem)`` for a binding."""
        if binding.api_key_ciphertext is not None:
            try:
                key = self._box().open(
                    binding.api_key_ciphertext,
                    context=key_context(binding.model_id, binding.base_url),
                )
            except SecretBoxError as exc:
                log.warning("model %s: stored API key unusable: %s", binding.model_id, exc)
                return None, None, KEY_UNREADABLE
            return key, None, None
        name = binding.api_key_env
        if not name:
            return None, None, None
        if not trusted:
            return None, None, TENANT_KEY_ENV_REFUSED
        value = self._environ.get(name, "") if self._settings.key_env_allowed(name) else ""
        if not value:
            # One message for "not allowed" and "not set"; the log says which, for the operator.
            why = "not set" if self._settings.key_env_allowed(name) else "not allowed"
            log.warning("global model %s: key variable %s is %s", binding.model_id, name, why)
            return None, None, KEY_UNAVAILABLE
        return value, name, None
