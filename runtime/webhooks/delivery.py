"""The webhook delivery worker: claims due outbox rows and POSTs them, at least once.

docs/architecture.md "Webhook outbox". Rules:

- Rows are claimed with ``FOR UPDATE SKIP LOCKED`` and leased for one attempt (the claim
  pushes ``next_attempt_at`` past the attempt's whole budget), so any number of nodes run
  this worker side by side and a node that dies mid-attempt leaves the row due again.
- Claims are fair across tenants (:meth:`storage.webhooks.WebhookStore.claim`): tenants
  take turns, and at most ``webhook_concurrency_per_tenant`` attempts of one tenant are in
  flight across all nodes, so a tenant whose receiver never answers cannot hold every slot.
- One attempt: the run object rendered from the row's snapshot (the same bytes every time),
  signed with the tenant's secret (:mod:`runtime.webhooks.signing`), POSTed through
  :class:`runtime.egress.EgressTransport` (the URL is resolved and checked again, and the
  connection goes to the checked address), no redirects followed, no environment proxies,
  a short timeout, at most :data:`MAX_RESPONSE_BYTES` of the answer read.
- A 2xx settles the delivery. Anything else (another status, a refused or dropped
  connection, a timeout, an egress refusal, a missing secret) is recorded as the last error
  (a fixed phrase, never a raw exception) and retried after an exponentially growing,
  jittered delay, until ``webhook_max_attempts``; then the delivery is ``failed``.
- The outcome write is fenced by the attempt number: a late answer of an attempt whose
  lease lapsed (another node retried) changes nothing.
- The worker task is supervised (:class:`runtime.tasks.Supervised`): if it dies it is
  logged and started again after a back-off, and :meth:`WebhookDelivery.unhealthy_reason`
  (a readiness check) says so until it claims again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx2

from runtime.egress import EgressPolicy, EgressRefused, EgressTransport
from runtime.runs.run_object import run_object
from runtime.secret_box import SecretBox, SecretBoxError
from runtime.settings import Settings
from runtime.tasks import Supervised, cancel_and_wait
from runtime.webhooks.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    seal_context,
    signature_header,
)
from storage.database import Database
from storage.errors import StorageError
from storage.webhooks import ClaimedDelivery, WebhookStore

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 1024
"""How much of a receiver's answer is read (a snippet of it goes into ``last_error``)."""
MAX_ERROR_CHARS = 200
LEASE_MARGIN_SECONDS = 10.0
USER_AGENT = "Runwright-Webhooks/1"

_UNPRINTABLE = re.compile(r"[^\x21-\x7e]+")  # runs of blanks and control characters


def retry_delay(
    attempt: int, *, base: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """Seconds before the attempt after ``attempt`` (1-based): exponential back-off with
    "equal jitter" (half the step fixed, half random; AWS Architecture Blog, "Exponential
    Backoff And Jitter"): ``step = min(cap, base * 2**(attempt-1))``, result in
    ``[step/2, step]``."""
    step = min(cap, base * 2 ** max(0, attempt - 1))
    return step / 2 + rand() * step / 2


def render_body(snapshot: dict[str, Any]) -> bytes:
    """The request body: the run object (contract 1.1) as the status write left the run,
    compact JSON. ``snapshot`` is the row as JSON (times as ISO 8601 strings)."""
    row = dict(snapshot)
    for key, value in snapshot.items():
        if key.endswith("_at") and isinstance(value, str):
            row[key] = datetime.fromisoformat(value)
    return json.dumps(run_object(row), separators=(",", ":")).encode()


def sanitize(text: str) -> str:
    """Printable ASCII only, whitespace runs collapsed, at most :data:`MAX_ERROR_CHARS`."""
    return _UNPRINTABLE.sub(" ", text).strip()[:MAX_ERROR_CHARS]


class _AttemptFailed(Exception):
    """An attempt that got no 2xx: ``error`` is what ``last_error`` records."""

    def __init__(self, error: str, status_code: int | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.status_code = status_code


class WebhookDelivery:
    """The supervised delivery task of one node. Every method runs on the asyncio loop.

    Args:
        db: returns the started database.
        box: returns the secret box that opens tenants' secrets.
        settings: ``webhook_*`` settings and the egress policy.
        transport: the transport under the egress check (tests; default: plain HTTP).
    """

    def __init__(
        self,
        db: Callable[[], Database],
        box: Callable[[], SecretBox],
        settings: Settings,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self._db = db
        self._box = box
        self._settings = settings
        self._policy: EgressPolicy = settings.egress_policy()
        self._inner = transport
        self._client: httpx2.AsyncClient | None = None
        # One attempt: name resolution, then the request under its own timeout.
        self._budget = settings.webhook_timeout_seconds + self._policy.resolve_timeout
        self._worker = Supervised("webhook delivery worker", self._run)
        self._inflight: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()

    @property
    def enabled(self) -> bool:
        """Whether this node delivers (``RUNWRIGHT_WEBHOOK_DELIVERY_ENABLED``)."""
        return self._settings.webhook_delivery_enabled

    def unhealthy_reason(self) -> str | None:
        """None while the worker runs (or is switched off on this node); else why not."""
        return self._worker.unhealthy_reason() if self.enabled else None

    async def start(self) -> None:
        """Start the supervised worker (nothing when delivery is off on this node)."""
        if not self.enabled:
            log.info("webhook delivery is off on this node (RUNWRIGHT_WEBHOOK_DELIVERY_ENABLED)")
            return
        self._client = httpx2.AsyncClient(
            transport=EgressTransport(self._policy, self._inner),
            timeout=self._settings.webhook_timeout_seconds,
            follow_redirects=False,
            trust_env=False,
        )
        await self._worker.start()

    async def stop(self) -> None:
        """Stop claiming and cancel attempts in flight (their rows are due again when their
        lease lapses: delivered at least once, maybe twice)."""
        await self._worker.stop()
        for attempt in list(self._inflight):
            await cancel_and_wait(attempt)
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _run(self) -> None:
        settings = self._settings
        store = WebhookStore(self._db())
        lease = self._budget + LEASE_MARGIN_SECONDS
        while True:
            self._changed.clear()  # before counting: a slot freed from here on wakes the wait
            free = settings.webhook_concurrency - len(self._inflight)
            claimed: list[ClaimedDelivery] = []
            if free > 0:
                try:
                    claimed = await store.claim(
                        free, lease, tenant_cap=settings.webhook_concurrency_per_tenant
                    )
                except StorageError as exc:  # the database probe reports the outage
                    log.warning("claiming webhook deliveries failed: %s", exc)
                self._worker.healthy()
            for delivery in claimed:
                task = asyncio.create_task(self._attempt(store, delivery))
                self._inflight.add(task)
                task.add_done_callback(self._finished)
            if free > 0 and len(claimed) == free:
                continue  # every slot filled: more may be due at once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), settings.webhook_poll_seconds)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._changed.set()

    async def _attempt(self, store: WebhookStore, delivery: ClaimedDelivery) -> None:
        """One attempt of ``delivery`` and its recorded outcome; never raises."""
        try:
            status = await asyncio.wait_for(self._post(delivery), self._budget)
        except _AttemptFailed as exc:
            await self._settle_failure(store, delivery, exc)
            return
        except TimeoutError:
            await self._settle_failure(store, delivery, _AttemptFailed("timed out"))
            return
        except Exception:
            log.exception("webhook delivery %s: attempt %d failed unexpectedly",
                          delivery.id, delivery.attempts)  # fmt: skip
            await self._settle_failure(store, delivery, _AttemptFailed("internal error"))
            return
        try:
            await store.delivered(delivery.id, delivery.attempts, status)
        except StorageError as exc:  # the lease lapses and the row is sent again
            log.warning("webhook delivery %s: recording success failed: %s", delivery.id, exc)
            return
        log.info("webhook delivery %s of run %s delivered (attempt %d, HTTP %d)",
                 delivery.id, delivery.run_id, delivery.attempts, status)  # fmt: skip

    async def _post(self, delivery: ClaimedDelivery) -> int:
        """POST the delivery once.

        Returns:
            The 2xx status.

        Raises:
            _AttemptFailed: no secret, an egress refusal, a connection or protocol error,
                or an answer that is not 2xx.
        """
        secret = self._open_secret(delivery)
        body = render_body(delivery.run)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            DELIVERY_HEADER: str(delivery.id),
            EVENT_HEADER: delivery.event,
            SIGNATURE_HEADER: signature_header(secret, body),
        }
        assert self._client is not None
        try:
            async with self._client.stream(
                "POST", delivery.url, content=body, headers=headers
            ) as response:
                status = response.status_code
                if 200 <= status < 300:
                    return status
                snippet = bytearray()
                async for chunk in response.aiter_raw():
                    snippet += chunk[: MAX_RESPONSE_BYTES - len(snippet)]
                    if len(snippet) >= MAX_RESPONSE_BYTES:
                        break
        except EgressRefused as exc:
            log.info("webhook delivery %s refused: %s", delivery.id, exc.reason)
            raise _AttemptFailed(f"refused: {exc}") from None
        except httpx2.TimeoutException:
            raise _AttemptFailed("timed out") from None
        except (httpx2.HTTPError, OSError):
            raise _AttemptFailed("connection failed") from None
        text = sanitize(bytes(snippet).decode("utf-8", "replace"))
        raise _AttemptFailed(f"HTTP {status}" + (f": {text}" if text else ""), status)

    def _open_secret(self, delivery: ClaimedDelivery) -> str:
        if delivery.secret_ciphertext is None:
            raise _AttemptFailed("the tenant has no webhook secret")
        try:
            return self._box().open(delivery.secret_ciphertext, context=seal_context(
                delivery.tenant_id))  # fmt: skip
        except SecretBoxError:
            log.error("webhook delivery %s: the tenant's secret does not open with this "
                      "server's secrets key", delivery.id)  # fmt: skip
            raise _AttemptFailed("the tenant's webhook secret cannot be opened") from None

    async def _settle_failure(
        self, store: WebhookStore, delivery: ClaimedDelivery, failure: _AttemptFailed
    ) -> None:
        settings = self._settings
        error = sanitize(failure.error)
        try:
            if delivery.attempts >= settings.webhook_max_attempts:
                await store.failed(delivery.id, delivery.attempts,
                                   status_code=failure.status_code, error=error)  # fmt: skip
                log.warning("webhook delivery %s of run %s failed after %d attempts: %s",
                            delivery.id, delivery.run_id, delivery.attempts, error)  # fmt: skip
                return
            delay = retry_delay(
                delivery.attempts,
                base=settings.webhook_retry_base_seconds,
                cap=settings.webhook_retry_max_seconds,
            )
            await store.retry(delivery.id, delivery.attempts, delay_seconds=delay,
                              status_code=failure.status_code, error=error)  # fmt: skip
            log.info("webhook delivery %s: attempt %d failed (%s); next in %.1f s",
                     delivery.id, delivery.attempts, error, delay)  # fmt: skip
        except StorageError as exc:  # the lease lapses and the attempt is simply repeated
            log.warning("webhook delivery %s: recording the failure failed: %s", delivery.id, exc)
