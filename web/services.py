"""The components one app instance owns, built by ``create_app`` and passed to the routes.

Nothing here exists at import time. The start/stop order is :func:`build_services`'s list of
``lifespan.add(...)`` calls; to add a runtime component (a supervisor, an event writer),
construct it there and add one step after ``migrations``. Routes read components through
the :class:`Services` object they were given, once the app is serving.
"""

from __future__ import annotations

import asyncio
import logging

from runtime.checkpoints import Checkpoints
from runtime.cluster.listener import Listener
from runtime.default_model import DefaultModel
from runtime.engine import Engine
from runtime.engines.native import NativeEngine
from runtime.engines.opencode.engine import OpenCodeEngine
from runtime.engines.scripted import ScriptedEngine
from runtime.metrics import Metrics
from runtime.model_credentials import ModelTargets
from runtime.readiness import Readiness
from runtime.runs.hooks import StoreRunHooks
from runtime.runs.service import RunService
from runtime.sandbox import announce as announce_sandbox
from runtime.secret_box import SecretBox, load_secret_box
from runtime.settings import Settings
from runtime.webhooks.delivery import WebhookDelivery
from storage.database import Database
from storage.embedded import EmbeddedPostgres
from storage.errors import DatabaseUnavailable
from storage.migrate import apply_migrations
from storage.probe import DatabaseProbe
from web.idempotency import KeySweeper
from web.lifespan import Lifespan, NotStarted
from web.stream_quota import StreamQuota
from web.tokens import resolve_jwt_secret

log = logging.getLogger(__name__)


class Services:
    """Holds the settings and every started component of one app.

    Attributes:
        settings: the one Settings object.
        lifespan: the ordered start/stop steps.
        metrics: this app's Prometheus registry and metrics (``GET /metrics``).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lifespan = Lifespan(grace_seconds=settings.shutdown_grace_seconds)
        self._embedded: EmbeddedPostgres | None = None
        self._db: Database | None = None
        self._dsn: str | None = None
        self._probe: DatabaseProbe | None = None
        interval = settings.readiness_interval_seconds
        self._probe_timeout = 2.0 + interval
        self.readiness = Readiness(
            self._ping_database, interval=interval, stale_after=2 * interval + self._probe_timeout
        )
        self.readiness.add_check("event_writer", self._writer_check)
        # The node's LISTEN connection (streams of runs on other nodes, relayed cancels).
        self.listener = Listener(
            lambda: self.dsn, node_id=settings.node_id, poll_seconds=settings.notify_poll_seconds
        )
        self.readiness.add_check("listener", self.listener.unhealthy_reason)
        self.readiness.add_check("event_feed", lambda: self.runs.feed_unhealthy_reason())
        # SIGTERM: the process drains (takes no new runs) until it exits.
        self.readiness.add_check("draining", lambda: "draining" if self.runs.draining else None)
        self._jwt_secret: str | None = None
        self.stream_quota = StreamQuota(settings.max_streams_per_tenant)
        self._secret_box: SecretBox | None = None
        self.model_targets = ModelTargets(lambda: self.db, lambda: self.secret_box, settings)
        # Expired Idempotency-Keys: swept hourly, or once per lifetime when that is shorter.
        self.key_sweeper = KeySweeper(
            lambda: self.db, interval=min(3600.0, settings.idempotency_key_ttl_seconds)
        )
        self.metrics = Metrics()
        self.checkpoints = Checkpoints(lambda: self.db, settings)
        self.default_model = DefaultModel(lambda: self.db, settings)
        engines: dict[str, Engine] = {
            "native": NativeEngine(settings, checkpoints=self.checkpoints, metrics=self.metrics),
            "opencode": OpenCodeEngine(settings),
        }
        if settings.scripted_engine_enabled:
            engines["scripted"] = ScriptedEngine()
        # Completion webhooks: the supervised delivery task (readiness red while it is down).
        self.webhooks = WebhookDelivery(lambda: self.db, lambda: self.secret_box, settings)
        self.readiness.add_check("webhook_delivery", self.webhooks.unhealthy_reason)
        self.runs = RunService(
            settings,
            engines,
            StoreRunHooks(self.model_targets, engines, self.checkpoints),
            workspace_for=self.checkpoints.workspace_path,
            model_targets=self.model_targets,
            metrics=self.metrics,
            listener=self.listener,
        )

    @property
    def db(self) -> Database:
        """The connection pool.

        Raises:
            NotStarted: before the ``database`` step ran or after it stopped.
        """
        if self._db is None:
            raise NotStarted("database is not started")
        return self._db

    @property
    def dsn(self) -> str:
        """The DSN the pool connected to (the embedded server's when DATABASE_URL is unset).

        Raises:
            NotStarted: before the ``database`` step ran.
        """
        if self._dsn is None:
            raise NotStarted("database is not started")
        return self._dsn

    @property
    def jwt_secret(self) -> str:
        """The HS256 key for bearer tokens (settings, or the generated file).

        Raises:
            NotStarted: before the ``jwt_secret`` step ran.
        """
        if self._jwt_secret is None:
            raise NotStarted("jwt secret is not loaded")
        return self._jwt_secret

    @property
    def secret_box(self) -> SecretBox:
        """Seals and opens tenant model keys (``RUNWRIGHT_SECRETS_KEY`` or the key file).

        Raises:
            NotStarted: before the ``secrets_key`` step ran.
        """
        if self._secret_box is None:
            raise NotStarted("secrets key is not loaded")
        return self._secret_box

    # --- lifespan steps ----------------------------------------------------------------

    async def start_database(self) -> None:
        """Connect the pool; start the embedded Postgres first when DATABASE_URL is unset."""
        dsn = self.settings.database_url
        if dsn is None:
            self._embedded = EmbeddedPostgres(self.settings.data_dir)
            dsn = await asyncio.to_thread(self._embedded.start)
        self._db = await Database.connect(
            dsn, min_size=self.settings.db_pool_min, max_size=self.settings.db_pool_max
        )
        self._probe = DatabaseProbe(dsn, timeout=self._probe_timeout)
        self._dsn = dsn

    async def stop_database(self) -> None:
        """Close the pool, then detach from the embedded Postgres if this app started it."""
        probe, self._probe = self._probe, None
        if probe is not None:
            await probe.close()
        db, self._db = self._db, None
        if db is not None:
            await db.close()
        embedded, self._embedded = self._embedded, None
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)

    def _writer_check(self) -> str | None:
        """Readiness: the event writer runs and its writes succeed."""
        writer = getattr(self.runs, "writer", None)
        return "not started" if writer is None else writer.unhealthy_reason()

    async def _ping_database(self) -> None:
        """Readiness's database round trip, over the probe's own connection.

        Raises:
            DatabaseUnavailable: not started, or Postgres did not answer.
        """
        if self._probe is None:
            raise DatabaseUnavailable("database is not started")
        await self._probe.ping()

    async def migrate(self) -> None:
        """Apply pending migrations (idempotent; serialised by an advisory lock)."""
        applied = await apply_migrations(self.db)
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))

    async def announce_sandbox(self) -> None:
        """Log how agent commands will run (a warning when unsandboxed)."""
        announce_sandbox(self.settings)

    async def sweep_workspaces(self) -> None:
        """Remove the workspaces of runs that are no longer live (a previous process's
        finished runs, or runs it left behind); live runs keep theirs."""
        removed = await self.checkpoints.sweep()
        if removed:
            log.info("removed %d workspaces of runs no longer live", len(removed))

    async def load_jwt_secret(self) -> None:
        """Read or create the token secret (file I/O off the event loop)."""
        self._jwt_secret = await asyncio.to_thread(resolve_jwt_secret, self.settings)

    async def load_secret_box(self) -> None:
        """Read or create the key that seals tenant model keys (file I/O off the loop)."""
        self._secret_box = await asyncio.to_thread(
            load_secret_box, self.settings.secrets_key, self.settings.data_dir
        )


def build_services(settings: Settings) -> Services:
    """Build the components of one app and list their start order.

    Order (stopped in reverse): database -> migrations -> readiness (the probe behind
    ``/readyz``) -> jwt_secret -> secrets_key -> sandbox -> workspaces (removes the
    workspaces of runs no longer live) -> default_model (the
    local model server when no model is registered) -> listener (the node's LISTEN
    connection) -> runs (broker, event writer,
    engines, Supervisor) -> idempotency_sweeper (deletes expired Idempotency-Keys) ->
    webhooks (the delivery worker of the webhook outbox).
    Runtime components go after ``migrations`` (they need the schema), e.g.::

        writer = EventWriter(services)            # built here, started by the lifespan
        services.lifespan.add("event_writer", writer.start, writer.stop)
    """
    services = Services(settings)
    services.lifespan.add("database", services.start_database, services.stop_database)
    services.lifespan.add("migrations", services.migrate)
    services.lifespan.add("readiness", services.readiness.start, services.readiness.stop)
    services.lifespan.add("jwt_secret", services.load_jwt_secret)
    services.lifespan.add("secrets_key", services.load_secret_box)
    services.lifespan.add("sandbox", services.announce_sandbox)
    # --- runtime components: add steps here (after migrations) ---------------------------
    services.lifespan.add("workspaces", services.sweep_workspaces)
    services.lifespan.add(
        "default_model", services.default_model.start, services.default_model.stop
    )
    services.lifespan.add("listener", services.listener.start, services.listener.stop)
    services.lifespan.add(
        "runs", lambda: services.runs.start(services.db, services.dsn), services.runs.stop
    )
    services.lifespan.add(
        "idempotency_sweeper", services.key_sweeper.start, services.key_sweeper.stop
    )
    services.lifespan.add("webhooks", services.webhooks.start, services.webhooks.stop)
    return services
