"""The OpenCode engine: configuration, health, preflight (contract section 6, official API).

One :class:`OpenCodeEngine` per process. It talks to an existing server
(``RUNWRIGHT_OPENCODE_BASE_URL``) or starts and owns one (``RUNWRIGHT_OPENCODE_MANAGED``),
keeps one HTTP client, the generated provider config and the health cache, and opens an
:class:`~runtime.engines.opencode.session.OpenCodeSession` per run execution.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import weakref
from typing import Any

from runtime.egress import EgressRefused
from runtime.engine import (
    Engine,
    EngineSession,
    EngineUnavailable,
    EngineUnsupportedRuntime,
    ModelTarget,
    PreflightRequest,
    RunContext,
)
from runtime.engines.opencode.client import OpenCodeClient, OpenCodeError
from runtime.engines.opencode.config import (
    ProviderConfigStore,
    ProviderRef,
    ProviderSetupError,
    provider_entry,
)
from runtime.engines.opencode.install import OpenCodeNotInstalled, locate_binary
from runtime.engines.opencode.model_proxy import ModelProxy
from runtime.engines.opencode.server import ManagedServer, ServerStartError
from runtime.sandbox.policy import Policy
from runtime.sandbox.shell import ShellFiles
from runtime.sandbox.shell import install as install_shell
from runtime.settings import Settings

log = logging.getLogger(__name__)

DISABLED_REASON = "OpenCode engine is disabled or missing RUNWRIGHT_OPENCODE_BASE_URL."
USER_SCOPED = "OpenCode engine requires a user-scoped draft sandbox session."
LOCAL_WORKSPACE = "OpenCode engine requires a locally resolvable workspace path."


class OpenCodeEngine(Engine):
    """Runs coding-agent runs on an OpenCode server through its official HTTP API.

    Args:
        settings: the ``opencode_*`` settings are read once, here.
    """

    name = "opencode"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.enabled = settings.opencode_enabled and bool(
            settings.opencode_base_url or settings.opencode_managed
        )
        config_dir = settings.opencode_config_dir or settings.data_dir / "opencode" / "config"
        self.config = ProviderConfigStore(config_dir)
        # OpenCode's bash runs through Runwright's sandboxed shell (runtime/sandbox/shell.py)
        self.shell_dir = settings.data_dir / "opencode" / "sandbox"
        self.shell: ShellFiles | None = None
        self.relay = ModelProxy(
            settings.egress_policy(), read_timeout=settings.opencode_upstream_deadline_seconds
        )
        self.server: ManagedServer | None = None
        self._client: OpenCodeClient | None = None
        self._start_error: str | None = None
        self._health: tuple[float, str | None] | None = None
        self._health_lock = asyncio.Lock()
        self._dir_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the managed server (managed mode) and the HTTP client.

        Never raises for OpenCode problems: the engine stays unavailable and preflight
        reports why.
        """
        if not self.enabled:
            return
        await self.relay.start()
        s = self.settings
        if s.sandbox == "bwrap":
            policy = Policy.from_settings(s)
            self.shell = await asyncio.to_thread(install_shell, self.shell_dir, policy)
            plugin = f"file://{self.shell.plugin}"
            await self.config.set_fixed({"shell": str(self.shell.wrapper), "plugin": [plugin]})
        if s.opencode_managed and not s.opencode_base_url:
            try:
                binary = locate_binary(s)
            except OpenCodeNotInstalled as exc:
                self._start_error = str(exc)
                log.warning("OpenCode engine unavailable: %s", exc)
                return
            self.server = ManagedServer(
                binary,
                s.data_dir / "opencode",
                self.config.config_dir,
                password=s.opencode_password,
                username=s.opencode_username,
                start_timeout=s.opencode_start_timeout_seconds,
                stop_grace=s.opencode_stop_grace_seconds,
                key_env_names=(
                    *s.model_key_env_allowlist,
                    *([s.default_model_api_key_env] if s.default_model_api_key_env else []),
                ),
            )
            await self._start_server()
        else:
            assert s.opencode_base_url is not None
            self._client = self._make_client(s.opencode_base_url, s.opencode_password)

    async def _start_server(self) -> None:
        assert self.server is not None
        try:
            base_url = await self.server.start()
        except (ServerStartError, OSError) as exc:
            self._start_error = f"managed OpenCode server failed to start: {exc}"
            log.warning("%s", self._start_error)
            return
        self._start_error = None
        if self._client is not None:
            await self._client.aclose()
        self._client = self._make_client(base_url, self.server.password)

    def _make_client(self, base_url: str, password: str | None) -> OpenCodeClient:
        s = self.settings
        return OpenCodeClient(
            base_url,
            password=password,
            username=s.opencode_username,
            request_timeout=s.opencode_request_timeout_seconds,
            connect_timeout=s.opencode_connect_timeout_seconds,
        )

    async def stop(self) -> None:
        """Close the client, stop the managed server (SIGTERM, then SIGKILL), then the
        model relay."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self.server is not None:
            await self.server.stop()
        await self.relay.stop()

    @property
    def client(self) -> OpenCodeClient:
        """The HTTP client. Raises RuntimeError before :meth:`start` succeeded."""
        if self._client is None:
            raise RuntimeError(self._start_error or "OpenCode engine is not started")
        return self._client

    # -- health and preflight ---------------------------------------------------------------

    async def unhealthy_reason(self) -> str | None:
        """Why the engine cannot take runs now, or None. Cached for
        ``opencode_health_cache_seconds`` (successes and failures alike, contract 6).

        A managed server that died is restarted once per check.
        """
        if not self.enabled:
            return DISABLED_REASON
        loop = asyncio.get_running_loop()
        async with self._health_lock:
            if self._health and loop.time() - self._health[0] < self._cache_seconds:
                return self._health[1]
            reason = await self._check_health()
            self._health = (loop.time(), reason)
            return reason

    @property
    def _cache_seconds(self) -> float:
        return self.settings.opencode_health_cache_seconds

    async def _check_health(self) -> str | None:
        if self.server is not None and not self.server.running:
            log.warning("managed OpenCode server is not running; restarting it")
            await self.server.stop()
            await self._start_server()
        if self._client is None:
            return self._start_error or "OpenCode engine is not started"
        try:
            health = await self._client.health()
        except OpenCodeError as exc:
            return str(exc)
        return None if health.get("healthy") else f"OpenCode reports unhealthy: {health}"

    def forget_health(self) -> None:
        """Drop the cached health result (the next preflight checks again)."""
        self._health = None

    async def preflight(self, request: PreflightRequest) -> dict[str, Any]:
        """Contract 6 preflight, in order: user principal, health, local workspace.

        Returns:
            ``{"opencode_workspace_path": "<abs path>"}`` for the run's context: where the
            run's own workspace will be (the session's directory).

        Raises:
            EngineUnsupportedRuntime: workload principal, or no local workspace directory.
            EngineUnavailable: disabled or unhealthy ("OpenCode engine is unavailable: …").
        """
        if request.user_id is None:
            raise EngineUnsupportedRuntime(USER_SCOPED)
        reason = await self.unhealthy_reason()
        if reason is not None:
            raise EngineUnavailable(f"OpenCode engine is unavailable: {reason}")
        # The run's own workspace is made when it starts, in a local directory that must
        # exist now (runtime/run_workspaces.py).
        workspace = request.workspace
        if workspace is None or not await asyncio.to_thread(workspace.parent.is_dir):
            raise EngineUnsupportedRuntime(LOCAL_WORKSPACE)
        resolved = await asyncio.to_thread(workspace.parent.resolve)
        return {"opencode_workspace_path": str(resolved / workspace.name)}

    # -- sessions ------------------------------------------------------------------------------

    def open(self, ctx: RunContext) -> EngineSession:
        """A session for one run execution (no I/O until its ``events()`` runs)."""
        from runtime.engines.opencode.session import OpenCodeSession

        return OpenCodeSession(self, ctx)

    async def model_problem(self, model: ModelTarget) -> str | None:
        """Why the run's model cannot be handed to OpenCode, or None (docs/security.md).

        The binding's credential problem, if any; for a tenant's model, a base URL the
        egress policy refuses (checked now for a prompt, clear failure; the relay checks
        again at each connect).
        """
        if model.credential_error is not None:
            return model.credential_error
        if model.operator_trusted:
            return None
        try:
            await self.settings.egress_policy().resolve(model.base_url)
        except EgressRefused as exc:
            log.info("tenant model %s refused for OpenCode: %s", model.model_id, exc.reason)
            return f"model endpoint could not be reached (connection failed, or {exc})"
        return None

    async def ensure_provider(self, model: ModelTarget, directory: str) -> ProviderRef:
        """Make the directory's OpenCode instance know the run's model.

        Writes the provider entry into the generated config, then checks
        ``GET /config/providers`` (which boots the directory's instance: these calls get
        ``opencode_start_timeout_seconds``); an instance loaded before the entry existed is disposed
        so it reloads (this aborts other sessions busy in that same directory).

        Raises:
            ValueError: the binding's key variable name is invalid.
            OpenCodeError: a call failed.
            ProviderSetupError: OpenCode still does not list the provider.
        """
        s = self.settings
        if not model.operator_trusted:
            # OpenCode reaches a tenant's endpoint only through the relay (key and egress).
            relayed = self.relay.route(model)
            model = dataclasses.replace(model, base_url=relayed, api_key=None, api_key_env=None)
        ref, entry = provider_entry(
            model,
            context_tokens=s.opencode_model_context_tokens,
            output_tokens=s.opencode_model_output_tokens,
        )
        await self.config.ensure(ref, entry)
        lock = self._dir_locks.get(directory)
        if lock is None:
            lock = self._dir_locks[directory] = asyncio.Lock()
        client, boot = self.client, s.opencode_start_timeout_seconds
        async with lock:
            if ref.model_key in (await client.providers(directory, seconds=boot)).get(
                ref.provider_id, []
            ):
                return ref
            await client.dispose_instance(directory, seconds=boot)
            if ref.model_key in (await client.providers(directory, seconds=boot)).get(
                ref.provider_id, []
            ):
                return ref
        raise ProviderSetupError(
            f"OpenCode did not load provider {ref.provider_id} from {self.config.path}"
            " (is the server's OPENCODE_CONFIG_DIR the engine's config dir?)"
        )
