"""The run's pinned model as an OpenCode provider (docs/design.md section 5,
docs/opencode.md section 3).

Every model binding becomes one ``@ai-sdk/openai-compatible`` provider entry in a config
file OpenCode reads per instance: ``<config dir>/opencode.json``, where the config dir is the
server's ``OPENCODE_CONFIG_DIR``. Nothing is written into the app's workspace. The file only
grows (entries are keyed by a hash of endpoint and key variable), so a directory instance
loaded earlier lacks at most some new providers; the engine then disposes that instance so
OpenCode reloads it (``POST /instance/dispose``).

API keys are never written: ``apiKey`` is ``{env:NAME}`` (OpenCode substitutes the server
process's environment) or ``"none"`` when the binding names no variable. ``NAME`` is only
ever an operator-allowed variable of a global model: :mod:`runtime.model_credentials` sets
``ModelTarget.api_key_env`` for nothing else. A tenant's model is written with the loopback
relay's URL and no key (``model_proxy.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.atomic_write import atomic_write
from runtime.engine import ModelTarget

CONFIG_FILE = "opencode.json"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SAFE_KEY = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class ProviderSetupError(Exception):
    """OpenCode did not load the provider generated for the run's model."""


@dataclass(frozen=True, slots=True)
class ProviderRef:
    """Where a prompt goes: ``{"providerID": provider_id, "modelID": model_key}``."""

    provider_id: str
    model_key: str


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def provider_ref(model: ModelTarget) -> ProviderRef:
    """The stable provider id and model key for a binding (same binding, same ids)."""
    provider_id = "rw-" + _digest(model.base_url.rstrip("/"), model.api_key_env or "")
    key = model.provider_model_id
    if not _SAFE_KEY.match(key):
        key = "m-" + _digest(key)
    return ProviderRef(provider_id, key)


def provider_entry(
    model: ModelTarget, *, context_tokens: int, output_tokens: int
) -> tuple[ProviderRef, dict[str, Any]]:
    """The provider entry for ``model``.

    Returns:
        ``(ref, entry)`` where ``entry`` is ``{"npm", "name", "options": {"baseURL",
        "apiKey"}, "models": {model_key: {"id": provider_model_id, "name", "limit"}}}``.

    Raises:
        ValueError: ``api_key_env`` is not a valid environment variable name.
    """
    ref = provider_ref(model)
    if model.api_key_env and not _ENV_NAME.match(model.api_key_env):
        raise ValueError(f"invalid API key variable name: {model.api_key_env!r}")
    api_key = f"{{env:{model.api_key_env}}}" if model.api_key_env else "none"
    entry = {
        "npm": "@ai-sdk/openai-compatible",
        "name": f"Runwright {model.provider}",
        "options": {"baseURL": model.base_url.rstrip("/"), "apiKey": api_key},
        "models": {
            ref.model_key: {
                "id": model.provider_model_id,
                "name": model.provider_model_id,
                "limit": {"context": context_tokens, "output": output_tokens},
            }
        },
    }
    return ref, entry


def base_config() -> dict[str, Any]:
    """Config keys every Runwright-managed OpenCode gets (offline, no sharing)."""
    return {
        "$schema": "https://opencode.ai/config.json",
        "autoupdate": False,
        "share": "disabled",
        "provider": {},
    }


class ProviderConfigStore:
    """The generated ``opencode.json`` in one config directory.

    Args:
        config_dir: OpenCode's ``OPENCODE_CONFIG_DIR``.
    """

    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir
        self.path = config_dir / CONFIG_FILE
        self._lock = asyncio.Lock()
        self._fixed: dict[str, Any] = {}

    async def set_fixed(self, keys: dict[str, Any]) -> None:
        """Keys written into the config now and kept on every later merge (the sandboxed
        ``shell`` and its ``plugin``, :mod:`runtime.sandbox.shell`)."""
        async with self._lock:
            self._fixed = dict(keys)
            await asyncio.to_thread(self._write_fixed)

    def _write_fixed(self) -> None:
        try:
            config = json.loads(self.path.read_text())
        except (OSError, ValueError):
            config = base_config()
        if any(config.get(k) != v for k, v in self._fixed.items()):
            config.update(self._fixed)
            self.config_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, json.dumps(config, indent=2, sort_keys=True).encode())

    async def ensure(self, ref: ProviderRef, entry: dict[str, Any]) -> bool:
        """Merge ``entry`` under ``ref.provider_id``; return whether the file changed."""
        async with self._lock:
            return await asyncio.to_thread(self._merge, ref, entry)

    def _merge(self, ref: ProviderRef, entry: dict[str, Any]) -> bool:
        try:
            config = json.loads(self.path.read_text())
        except (OSError, ValueError):
            config = base_config()
        providers = config.setdefault("provider", {})
        current = providers.get(ref.provider_id)
        merged = dict(entry)
        if isinstance(current, dict):
            merged["models"] = {**current.get("models", {}), **entry["models"]}
        if current == merged and all(config.get(k) == v for k, v in self._fixed.items()):
            return False
        config.update(self._fixed)
        providers[ref.provider_id] = merged
        atomic_write(self.path, json.dumps(config, indent=2, sort_keys=True).encode())
        return True
