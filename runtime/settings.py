"""Runwright's settings: one object, read from ``RUNWRIGHT_*`` environment variables.

``DATABASE_URL`` is read without the prefix. Every field is validated at start-up by
:func:`load_settings`, which turns pydantic's errors into one readable message.
The README's configuration table lists the same names and defaults.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from runtime.egress import EgressPolicy
from runtime.runs.leases import default_node_id
from runtime.secret_box import decode_key

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
"""A valid environment variable name (what ``api_key_env`` may hold)."""


class SettingsError(Exception):
    """The environment holds an invalid setting; the message names each bad variable."""


DEFAULT_COMMAND_ALLOWLIST = (
    "npm run build",
    "npm run lint",
    "npm run typecheck",
    "npm run test -- --run --passWithNoTests",
)


class Settings(BaseSettings):
    """All runtime configuration. Field ``foo_bar`` is env ``RUNWRIGHT_FOO_BAR``."""

    model_config = SettingsConfigDict(env_prefix="RUNWRIGHT_", extra="ignore", frozen=True)

    # --- storage -------------------------------------------------------------------------
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "RUNWRIGHT_DATABASE_URL")
    )
    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("runwright")))
    db_pool_min: int = Field(default=2, ge=1, le=100)
    db_pool_max: int = Field(default=8, ge=1, le=200)

    # --- HTTP ----------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # `runwright serve` processes behind the port, each its own node (web/workers.py).
    workers: int = Field(default=1, ge=1, le=64)
    jwt_secret: str | None = Field(default=None, min_length=32)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # "auto": text lines on a terminal, one JSON object per line otherwise (runtime/logs.py).
    log_format: Literal["auto", "text", "json"] = "auto"
    # Bearer token GET /metrics requires; unset = /metrics answers 404 (off). Never a JWT.
    metrics_token: SecretStr | None = Field(default=None, min_length=16, max_length=256)

    # --- runtime -------------------------------------------------------------------------
    node_id: str = Field(default_factory=default_node_id, min_length=1)
    max_live_runs: int = Field(default=500, ge=1, le=20000)
    max_actor_restarts: int = Field(default=3, ge=0, le=100)
    restart_policy: Literal["fail", "requeue"] = "fail"
    # SIGTERM: runs still executing after the grace period are handed back by this policy.
    drain_policy: Literal["requeue", "fail"] = "requeue"
    lease_seconds: float = Field(default=30.0, ge=2.0)
    # Scale-out (docs/design.md 9): each node beats its row in runwright_nodes this often; a
    # node silent for node_dead_seconds is dead and the others settle its running runs.
    node_heartbeat_seconds: float = Field(default=1.0, ge=0.05, le=60.0)
    node_dead_seconds: float = Field(default=3.0, ge=0.2, le=600.0)
    # How often a node with free slots polls the run queue: the safety net behind rw_work
    # (a run created on any node wakes every node's claim loop at once).
    claim_poll_seconds: float = Field(default=2.0, ge=0.01, le=60.0)
    scripted_engine_enabled: bool = False
    event_coalesce_ms: float = Field(default=30.0, ge=0.0, le=1000.0)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0.0)
    # How long an idle HTTP/1.1 connection stays open for its next request. Clients close
    # theirs sooner (httpx: 5 s, our client: 4 s), so the server never closes a connection
    # a client is just reusing (that race drops the request with a connection reset).
    http_keep_alive_seconds: float = Field(default=30.0, gt=0.0, le=3600.0)
    # Unwritten events beyond which engines are paused until the writer catches up.
    event_writer_max_pending: int = Field(default=100_000, ge=100, le=10_000_000)
    # How long an Idempotency-Key of run creation stays bound to its run (default 24 h).
    idempotency_key_ttl_seconds: float = Field(default=86400.0, ge=1.0, le=30 * 86400.0)
    # How often readiness pings Postgres over its own connection (/readyz reads the result).
    readiness_interval_seconds: float = Field(default=1.0, ge=0.05, le=60.0)
    # A run paused on an approval request fails closed after this long without a decision
    # (a run's own approval_timeout_seconds wins); the sweep looks this often.
    approval_timeout_seconds: float = Field(default=86400.0, ge=1.0, le=30 * 86400.0)
    approval_sweep_seconds: float = Field(default=5.0, ge=0.05, le=3600.0)

    # --- several nodes on one Postgres (docs/architecture.md, "Several nodes") -----------
    # The listener's slow poll: a lost NOTIFY delays a stream or a relayed cancel this long.
    notify_poll_seconds: float = Field(default=2.0, ge=0.05, le=60.0)
    # How long a cancel sent to this node waits for the node executing the run to answer.
    command_relay_timeout_seconds: float = Field(default=20.0, ge=1.0, le=600.0)

    # --- fair shares between tenants (docs/security.md) ------------------------------------
    # Runs of one tenant executing at once, across all nodes; the rest wait `queued`.
    max_live_runs_per_tenant: int = Field(default=100, ge=1, le=20000)
    # Queued runs one tenant may have; a create beyond it answers 429 with Retry-After.
    max_queued_runs_per_tenant: int = Field(default=2000, ge=1, le=1_000_000)
    # Open event streams one tenant may hold on a node; more answer 429 with Retry-After.
    max_streams_per_tenant: int = Field(default=1000, ge=1, le=100_000)

    # --- SSE -----------------------------------------------------------------------------
    sse_keepalive_seconds: float = Field(default=15.0, gt=0.0)
    sse_queue_max: int = Field(default=2000, ge=16)
    # Lifetime of a browser's read-only stream ticket (web/stream_tickets.py), seconds.
    stream_ticket_ttl_seconds: int = Field(default=120, ge=10, le=3600)

    # --- messages and the native agent (contract 5 and 7.1) --------------------------------
    message_budget_chars: int = Field(default=28000, ge=1)
    max_tool_iterations: int = Field(default=30, ge=1)
    tool_timeout_seconds: float = Field(default=120.0, ge=15.0)
    model_request_timeout_seconds: float = Field(default=120.0, gt=0.0)
    # Cap on each model reply, in tokens: small local models otherwise ramble to n_ctx.
    model_max_output_tokens: int = Field(default=1024, ge=16)

    # --- toolpack (contract 7.3) -------------------------------------------------------
    command_allowlist: Annotated[tuple[str, ...], NoDecode] = DEFAULT_COMMAND_ALLOWLIST
    test_timeout_seconds: float = Field(default=240.0, gt=0.0)
    build_timeout_seconds: float = Field(default=300.0, gt=0.0)
    max_command_output_bytes: int = Field(default=12000, ge=256)
    read_range_max_bytes: int = Field(default=12000, ge=256, le=16000)
    max_patch_bytes: int = Field(default=240000, ge=1024)
    enable_legacy_write_file: bool = False
    auto_verify_patch: bool = False

    # --- revisions (contract 8) ----------------------------------------------------------
    builder_max_files: int = Field(default=200, ge=1)
    builder_max_file_bytes: int = Field(default=256 * 1024, ge=1)
    builder_max_lockfile_bytes: int = Field(default=2 * 1024 * 1024, ge=1)
    builder_max_project_bytes: int = Field(default=2 * 1024 * 1024, ge=1)

    # --- local default model (issue: native engine) --------------------------------------
    local_model_autostart: bool = True
    # An operator's own OpenAI-compatible endpoint as the global default chat model,
    # registered (or updated) at start-up instead of the local model.
    default_model_base_url: str | None = None
    default_model_id: str | None = None
    default_model_api_key_env: str | None = None
    local_model_port: int = Field(default=0, ge=0, le=65535)

    # --- OpenCode (contract 6) -----------------------------------------------------------
    opencode_enabled: bool = False
    opencode_base_url: str | None = None
    opencode_managed: bool = False
    opencode_password: str | None = None
    opencode_request_timeout_seconds: float = Field(default=20.0, ge=3.0)
    opencode_connect_timeout_seconds: float = Field(default=5.0, ge=1.0)
    opencode_health_cache_seconds: float = Field(default=15.0, ge=3.0)
    opencode_upstream_deadline_seconds: float = Field(default=120.0, gt=0.0)
    opencode_cancel_timeout_seconds: float = Field(default=10.0, gt=0.0)
    # Where `runwright opencode install` puts the pinned npm package;
    # None = <repo>/.cache/opencode. `opencode_binary` overrides the binary found there.
    opencode_install_dir: Path | None = None
    opencode_binary: Path | None = None
    # Directory holding the generated provider config (`opencode.json`). A managed server
    # gets it as OPENCODE_CONFIG_DIR; an external server must be started with the same
    # OPENCODE_CONFIG_DIR. None = <data_dir>/opencode/config.
    opencode_config_dir: Path | None = None
    opencode_username: str = "opencode"
    opencode_start_timeout_seconds: float = Field(default=60.0, gt=0.0)
    opencode_stop_grace_seconds: float = Field(default=5.0, ge=0.0)
    # A silent `/event` stream (heartbeats come every 10 s) is treated as dropped after this.
    opencode_stream_idle_seconds: float = Field(default=35.0, gt=0.0)
    opencode_reconnect_attempts: int = Field(default=5, ge=0, le=100)
    # OpenCode's bash tool for unattended runs: "allow" or "deny" (edits are always asked
    # and allowed only inside the run's workspace).
    opencode_bash_permission: Literal["allow", "deny"] = "deny"
    # Limits OpenCode is told for the run's model (it sends max_tokens = output).
    opencode_model_context_tokens: int = Field(default=32000, ge=1024)
    opencode_model_output_tokens: int = Field(default=4096, ge=16)

    # --- tenant isolation: model credentials and egress (issue 9, docs/security.md) ------
    # 32 bytes, base64url: encrypts tenant model API keys at rest. None = the key in
    # <data_dir>/secrets_key, generated with mode 0600 on first use.
    secrets_key: str | None = Field(default=None, repr=False)
    # Environment variable names a global (operator) model may take its key from
    # (api_key_env); ","-separated. Tenant models never read the environment.
    # RUNWRIGHT_DEFAULT_MODEL_API_KEY_ENV is allowed implicitly.
    model_key_env_allowlist: Annotated[tuple[str, ...], NoDecode] = ()
    # Where tenant-chosen URLs (model base_url) may go: host patterns ("*", a name,
    # "*.example.com") and CIDRs allowed in spite of being loopback/private/link-local/
    # CGNAT ("127.0.0.0/8"); ","-separated. Metadata addresses are always refused.
    egress_allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ("*",)
    egress_allowed_networks: Annotated[tuple[str, ...], NoDecode] = ()

    # --- completion webhooks (issue 12 item 5; README "Webhooks") -------------------------
    # False: this node writes outbox rows with run statuses but delivers none (other
    # nodes, or a later start, deliver them).
    webhook_delivery_enabled: bool = True
    # Per attempt: the HTTP request (connect, send, first byte) after name resolution.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0.0, le=120.0)
    # Attempts per delivery before it is marked failed.
    webhook_max_attempts: int = Field(default=10, ge=1, le=100)
    # Back-off: attempt n waits min(max, base * 2**(n-1)), jittered to half..all of it.
    webhook_retry_base_seconds: float = Field(default=5.0, gt=0.0, le=3600.0)
    webhook_retry_max_seconds: float = Field(default=3600.0, gt=0.0, le=86400.0)
    # How often an idle worker looks for due deliveries; attempts in flight per node.
    webhook_poll_seconds: float = Field(default=1.0, ge=0.01, le=60.0)
    webhook_concurrency: int = Field(default=16, ge=1, le=1000)
    # Attempts of one tenant in flight at once, across all nodes: a tenant whose receiver
    # never answers holds at most this many slots (each for the whole timeout), never all.
    webhook_concurrency_per_tenant: int = Field(default=4, ge=1, le=1000)

    # --- command sandbox (issue 9 item 1; policy in runtime/sandbox/policy.py) -----------
    # "bwrap": every agent command runs under bubblewrap (fails closed when bwrap is
    # missing); "none": unsandboxed, for development only (a warning is logged at start).
    sandbox: Literal["bwrap", "none"] = "bwrap"
    sandbox_network: bool = False  # True shares the host network with sandboxed commands
    sandbox_uid: int = Field(default=65534, ge=1, le=2**31 - 1)
    sandbox_gid: int = Field(default=65534, ge=1, le=2**31 - 1)
    sandbox_cpu_seconds: int = Field(default=300, ge=1, le=86400)
    sandbox_memory_bytes: int = Field(default=4 * 2**30, ge=2**28, le=2**40)
    sandbox_max_processes: int = Field(default=512, ge=8, le=65536)
    sandbox_max_file_bytes: int = Field(default=256 * 2**20, ge=2**20, le=2**40)
    sandbox_tmp_bytes: int = Field(default=512 * 2**20, ge=2**20, le=2**36)
    # App dependencies: installed outside the run's sandbox once per manifest hash.
    # None = <data_dir>/deps.
    deps_cache_dir: Path | None = None
    deps_registry: str = Field(
        default="https://registry.npmjs.org/", pattern=r"^https://[^\s/]+(/[^\s]*)?/$"
    )
    deps_install_timeout_seconds: float = Field(default=600.0, ge=10.0, le=7200.0)
    deps_max_bytes: int = Field(default=1024 * 2**20, ge=2**20, le=2**40)
    # Run workspaces (runtime/run_workspaces.py): base revisions kept on disk, ready to
    # copy into new runs' workspaces (least recently used evicted first). Above the number
    # of apps with runs at once: fewer, and every run misses (a query and a written tree
    # per run; 32 with 50 busy apps did). A revision is at most 2 MiB (contract 8).
    workspace_cache_revisions: int = Field(default=256, ge=1, le=10_000)

    @field_validator("node_dead_seconds")
    @classmethod
    def _dead_after_missed_beats(cls, value: float, info: ValidationInfo) -> float:
        # One late beat on a loaded machine must not make a live node look dead.
        beat = info.data.get("node_heartbeat_seconds")
        if beat is not None and value < 2 * beat:
            raise ValueError("must be at least twice RUNWRIGHT_NODE_HEARTBEAT_SECONDS")
        return value

    @field_validator("message_budget_chars")
    @classmethod
    def _floor_budget(cls, v: int) -> int:
        # Contract section 5: the budget is floored to 512 characters.
        return max(512, v)

    @field_validator("command_allowlist", mode="before")
    @classmethod
    def _split_allowlist(cls, v: object) -> object:
        # Env form: ";"-separated commands, as APPS_CODING_AGENT_COMMAND_ALLOWLIST.
        if isinstance(v, str):
            return tuple(part.strip() for part in v.split(";") if part.strip())
        return v

    @field_validator(
        "model_key_env_allowlist",
        "egress_allowed_hosts",
        "egress_allowed_networks",
        mode="before",
    )
    @classmethod
    def _split_list(cls, v: object) -> object:
        # Env form: ","-separated (whitespace around items is ignored).
        if isinstance(v, str):
            return tuple(part.strip() for part in v.split(",") if part.strip())
        return v

    @field_validator("model_key_env_allowlist")
    @classmethod
    def _env_names(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for name in v:
            if not ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not an environment variable name")
        return v

    @field_validator("egress_allowed_networks")
    @classmethod
    def _networks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for net in v:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"{net!r} is not a network (CIDR)") from None
        return v

    @field_validator("secrets_key")
    @classmethod
    def _secrets_key(cls, v: str | None) -> str | None:
        if v is not None:
            decode_key(v)  # ValueError names the problem, never the value
        return v

    def key_env_allowed(self, name: str) -> bool:
        """Whether a global model may read its API key from environment variable ``name``."""
        return name in self.model_key_env_allowlist or name == self.default_model_api_key_env

    def egress_policy(self) -> EgressPolicy:
        """The policy for tenant-chosen destinations (:mod:`runtime.egress`)."""
        return EgressPolicy.from_strings(self.egress_allowed_hosts, self.egress_allowed_networks)

    @property
    def runs_dir(self) -> Path:
        """Where run workspaces (``run/<run_id>``) and the revision cache
        (``revisions/<revision_id>``) live."""
        return self.data_dir / "workspaces"

    @property
    def deps_dir(self) -> Path:
        """The shared, read-only-mounted cache of installed app dependencies."""
        return self.deps_cache_dir or self.data_dir / "deps"


def load_settings(**overrides: object) -> Settings:
    """Read and validate settings from the environment (``overrides`` win).

    Raises:
        SettingsError: one or more variables are invalid; the message lists each of them.
    """
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = "_".join(str(p) for p in err["loc"]).upper()
            env = name if name == "DATABASE_URL" else f"RUNWRIGHT_{name}"
            lines.append(f"  {env}: {err['msg']}")
        raise SettingsError("invalid settings:\n" + "\n".join(lines)) from None
    if (settings.default_model_base_url is None) != (settings.default_model_id is None):
        raise SettingsError(
            "invalid settings:\n  RUNWRIGHT_DEFAULT_MODEL_BASE_URL and RUNWRIGHT_DEFAULT_MODEL_ID "
            "go together"
        )
    if settings.db_pool_min > settings.db_pool_max:
        raise SettingsError(
            "invalid settings:\n  RUNWRIGHT_DB_POOL_MIN must not exceed RUNWRIGHT_DB_POOL_MAX"
        )
    return settings
