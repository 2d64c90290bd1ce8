"""Checking and sealing the bindings a ``POST``/``PATCH /admin/models`` body carries.

docs/security.md ("Model credentials", "Egress"): a tenant model names no environment
variable and its ``base_url`` passes the egress policy (resolved now; checked again at
every connect); a global model's ``api_key_env`` must be in the operator's allow-list; an
``api_key`` is sealed with the server's secrets key, bound to the model and endpoint.
Every refusal is a 422 item naming the field, never the key, and never whether a variable
exists (the environment is not read here at all).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from runtime.egress import REFUSED_MESSAGE, EgressRefused
from runtime.model_credentials import key_context
from runtime.secret_box import SecretBox
from runtime.settings import Settings
from storage.models import Binding, BindingSpec
from web.errors import ApiError
from web.schemas.models import BindingIn

log = logging.getLogger(__name__)

TENANT_KEY_ENV = (
    "tenant models cannot take their key from the server's environment; send api_key instead"
)
KEY_ENV_NOT_ALLOWED = "not an allowed key variable (RUNWRIGHT_MODEL_KEY_ENV_ALLOWLIST)"
BASE_URL_REFUSED = f"base_url is {REFUSED_MESSAGE}"


async def prepare_bindings(
    bindings: Sequence[BindingIn],
    *,
    model_id: uuid.UUID,
    tenant_model: bool,
    settings: Settings,
    box: SecretBox,
    previous: Sequence[Binding] = (),
) -> list[BindingSpec]:
    """Validate ``bindings`` and return storage specs with their keys sealed.

    Args:
        bindings: The request's bindings (field ``bindings``, index order).
        model_id: The model they belong to (part of each key's sealing context).
        tenant_model: True for a tenant's model (untrusted), False for a global one.
        settings: The key-variable allow-list and the egress policy.
        box: Seals keys.
        previous: On PATCH, the bindings being replaced: one that omits ``api_key`` keeps
            the sealed key of a replaced binding with the same ``base_url`` (a key never
            follows a binding to another endpoint unless it is sent again).

    Raises:
        ApiError: 422 with one item per refused field.
    """
    problems: list[dict[str, Any]] = []
    policy = settings.egress_policy()
    kept = {b.base_url: b.api_key_ciphertext for b in previous if b.api_key_ciphertext}
    specs: list[BindingSpec] = []
    for index, binding in enumerate(bindings):
        loc: list[str | int] = ["body", "bindings", index]
        if binding.api_key_env is not None:
            if tenant_model:
                problems.append(_item(loc, "api_key_env", TENANT_KEY_ENV))
            elif not settings.key_env_allowed(binding.api_key_env):
                problems.append(_item(loc, "api_key_env", KEY_ENV_NOT_ALLOWED))
        if tenant_model:
            try:
                await policy.resolve(binding.base_url)
            except EgressRefused as exc:
                log.info("model %s: base_url refused: %s", model_id, exc.reason)
                problems.append(_item(loc, "base_url", BASE_URL_REFUSED))
        sealed: bytes | None = None
        if binding.api_key is not None:
            sealed = box.seal(binding.api_key, context=key_context(model_id, binding.base_url))
        elif "api_key" not in binding.model_fields_set and binding.api_key_env is None:
            sealed = kept.get(binding.base_url)
        specs.append(binding.spec(api_key_ciphertext=sealed))
    if problems:
        raise ApiError(422, problems)
    return specs


def _item(loc: list[str | int], field: str, message: str) -> dict[str, Any]:
    return {"type": "value_error", "loc": [*loc, field], "msg": message, "input": None}
