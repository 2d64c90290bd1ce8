"""The blocking client: :class:`Client` performs the calls described by
:mod:`runwright.client._core` with an ``httpx.Client``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Generator, Iterator
from datetime import datetime
from typing import Any, TypeVar, Unpack

import httpx
from httpx_sse import connect_sse

from runwright.client import _core
from runwright.client._core import DEFAULT_LIMITS, Call, RetryPolicy, RunFilters, StreamCursor
from runwright.client.errors import StreamError, TransportError
from runwright.client.models import (
    AgentSettings,
    App,
    ApprovalPolicy,
    BuilderState,
    MultitaskStrategy,
    Revision,
    Run,
    RunEvent,
    RunPage,
    Session,
    SessionDetail,
    StreamTicket,
    Usage,
    WebhookDelivery,
    WebhookSecret,
    WebhookSecretInfo,
)

T = TypeVar("T")


class Client:
    """A Runwright API client (blocking). Use as a context manager, or call :meth:`close`.

    Args:
        base_url: the server, e.g. ``http://127.0.0.1:8000``.
        token: a bearer token (``runwright token ...``); sent as ``Authorization``.
        tenant_id: sent as ``X-Tenant-ID`` when given (contract 9: otherwise the user's
            oldest membership).
        timeout: seconds for connecting and for each non-stream read.
        retry: how failed calls and broken streams are retried.
        limits: the connection pool's bounds (httpx's default: 100 connections; each open
            stream holds one).

    Every method raises :class:`~runwright.client.ApiError` (a subclass by status, with the
    API's ``detail``) for an error answer, and :class:`~runwright.client.TransportError`
    when the server stays unreachable after the retries.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        tenant_id: uuid.UUID | str | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        limits: httpx.Limits | None = None,
    ) -> None:
        self._headers = {"Authorization": f"Bearer {token}"}
        if tenant_id is not None:
            self._headers["X-Tenant-ID"] = str(uuid.UUID(str(tenant_id)))
        self._retry = retry or RetryPolicy()
        self._timeout = timeout
        self._http = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            limits=limits or DEFAULT_LIMITS,
            verify=_core.tls_context(),
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _perform(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            attempt += 1
            last = attempt >= self._retry.attempts
            try:
                response = self._http.request(
                    call.method, call.path, json=call.json_body, params=call.params,
                    headers={**self._headers, **call.headers},
                )  # fmt: skip
            except httpx.TransportError as exc:
                if last or not call.retry_error(exc):
                    raise TransportError(f"{call.method} {call.path}: {exc!r}") from exc
                time.sleep(self._retry.delay(attempt))
                continue
            if not response.is_success and not last and call.retry_status(response.status_code):
                time.sleep(self._retry.delay(attempt, response))
                continue
            return _core.result(call, response)

    # --- apps --------------------------------------------------------------------------

    def create_app(self, name: str, slug: str, *, template_key: str | None = None) -> App:
        """Create an app in the caller's tenant; its revision 1 is the template."""
        return self._perform(_core.create_app(name, slug, template_key))

    def builder_state(self, app_id: uuid.UUID | str) -> BuilderState:
        """The app with its full current draft revision."""
        return self._perform(_core.builder_state(app_id))

    def get_revision(self, app_id: uuid.UUID | str, revision_id: uuid.UUID | str) -> Revision:
        """One revision of the app, with its files."""
        return self._perform(_core.get_revision(app_id, revision_id))

    # --- runs --------------------------------------------------------------------------

    def create_run(self, app_id: uuid.UUID | str, input: str, **options: Any) -> Run:
        """Create a run; it starts executing at once. ``options``: ``engine``,
        ``base_revision_id``, ``model_id``, ``messages``, ``script``, ``approval_policy``,
        ``approval_timeout_seconds``, ``webhook``, ``session_id`` (continue that session),
        ``multitask_strategy`` (with ``session_id``: this create's answer to an active run
        of the session), ``tools`` (the native tools the run may call), ``idempotency_key``
        (default: a fresh one per call, reused by its retries)."""
        return self._perform(_core.create_run(app_id, input, **options))

    def list_runs(
        self, app_id: uuid.UUID | str, *, limit: int = 25, **filters: Unpack[RunFilters]
    ) -> list[Run]:
        """The app's runs, newest first: the first page of at most ``limit`` (1..100),
        filtered by ``status``, ``engine``, ``session_id``, ``created_before`` and
        ``created_after`` (:class:`~runwright.client.RunFilters`). For more, see
        :meth:`runs_page` and :meth:`iter_runs`."""
        return self._perform(_core.list_runs(app_id, limit, **filters))

    def runs_page(
        self,
        app_id: uuid.UUID | str,
        *,
        limit: int = 25,
        cursor: str | None = None,
        **filters: Unpack[RunFilters],
    ) -> RunPage:
        """One page of the app's runs, newest first, with the cursors of the pages around
        it: pass ``page.next_cursor`` (older runs) or ``page.prev_cursor`` (newer runs) as
        ``cursor``, with the same filters. Pages are stable while runs are created.

        Raises:
            ValidationFailed: a cursor that was altered or belongs to another list.
        """
        return self._perform(_core.runs_page(app_id, limit, cursor, **filters))

    def tenant_runs_page(
        self,
        *,
        limit: int = 25,
        cursor: str | None = None,
        app_id: uuid.UUID | str | None = None,
        **filters: Unpack[RunFilters],
    ) -> RunPage:
        """One page of the tenant's runs across its apps (``app_id``: only that app's),
        as :meth:`runs_page`. Needs a tenant admin's token."""
        return self._perform(_core.tenant_runs_page(limit, cursor, app_id, **filters))

    def iter_runs(
        self, app_id: uuid.UUID | str, *, page_size: int = 100, **filters: Unpack[RunFilters]
    ) -> Iterator[Run]:
        """Every run of the app matching the filters, newest first, read page by page
        (``page_size`` 1..100) by following ``next_cursor``."""
        cursor = None
        while True:
            page = self._perform(_core.runs_page(app_id, page_size, cursor, **filters))
            yield from page.runs
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def iter_tenant_runs(
        self,
        *,
        page_size: int = 100,
        app_id: uuid.UUID | str | None = None,
        **filters: Unpack[RunFilters],
    ) -> Iterator[Run]:
        """Every run of the tenant matching the filters, newest first, page by page."""
        cursor = None
        while True:
            page = self._perform(_core.tenant_runs_page(page_size, cursor, app_id, **filters))
            yield from page.runs
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def get_run(self, app_id: uuid.UUID | str, run_id: uuid.UUID | str) -> Run:
        """One run."""
        return self._perform(_core.get_run(app_id, run_id))

    def cancel_run(self, app_id: uuid.UUID | str, run_id: uuid.UUID | str) -> Run:
        """Cancel; returns once the engine has stopped (a finished run comes back as is)."""
        return self._perform(_core.cancel_run(app_id, run_id))

    def resume_run(
        self,
        app_id: uuid.UUID | str,
        run_id: uuid.UUID | str,
        payload: dict[str, Any] | None = None,
        approval: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Run:
        """Resume a paused run with ``payload`` (409 :class:`Conflict` if not paused) and,
        for a run waiting on an approval request, ``approval``: ``{request_id, decision:
        "approve" | "reject", arguments?, message?}``. Sends an ``Idempotency-Key``
        (``idempotency_key``, else a fresh one), so retries never resume twice."""
        call = _core.resume_run(app_id, run_id, payload, approval, idempotency_key)
        return self._perform(call)

    # --- approvals ---------------------------------------------------------------------

    def approve(
        self,
        app_id: uuid.UUID | str,
        run_id: uuid.UUID | str,
        request_id: str,
        *,
        arguments: dict[str, Any] | None = None,
    ) -> Run:
        """Approve the paused run's pending tool call (``run.pending_approval.request_id``)
        and let the run go on; with ``arguments`` the call runs with those instead of the
        model's (checked like the model's: e.g. 422 ``PATCH_TOO_LARGE`` or
        ``BUILDER_PATCH_POLICY_VIOLATION``, and the run keeps waiting).

        Safe to retry: a repeat of a decision the run already took (same request id,
        decision, arguments and message) answers with the run; a 503 is retried on that
        ground.

        Raises:
            Conflict: ``APPROVAL_NOT_PENDING`` (another request id, or none pending), or
                "Run is not paused" (the request was decided otherwise, or timed out).
            ValidationFailed: refused edited arguments (``.code`` names the rule).
        """
        return self._perform(_core.decide(app_id, run_id, request_id, approve=True,
                                          arguments=arguments))  # fmt: skip

    def reject(
        self,
        app_id: uuid.UUID | str,
        run_id: uuid.UUID | str,
        request_id: str,
        *,
        message: str | None = None,
    ) -> Run:
        """Reject the paused run's pending tool call: nothing runs, the model is told
        ``message`` as the call's result and goes on. Errors as :meth:`approve`."""
        return self._perform(_core.decide(app_id, run_id, request_id, approve=False,
                                          message=message))  # fmt: skip

    def get_agent_settings(self, app_id: uuid.UUID | str) -> AgentSettings:
        """The app's coding-agent settings (the default approval policy of new runs)."""
        return self._perform(_core.get_agent_settings(app_id))

    def set_agent_settings(
        self, app_id: uuid.UUID | str, *, approval_policy: ApprovalPolicy
    ) -> AgentSettings:
        """Set the default approval policy of the app's new runs (``none``, ``commands``,
        ``patches``, ``all``); runs already created keep theirs."""
        return self._perform(_core.set_agent_settings(app_id, approval_policy))

    # --- sessions ----------------------------------------------------------------------

    def create_session(
        self,
        app_id: uuid.UUID | str,
        *,
        title: str | None = None,
        multitask_strategy: MultitaskStrategy | None = None,
    ) -> Session:
        """Create a coding-agent session on the app. Runs join it with
        ``create_run(..., session_id=session.session_id)``: each sees the session's earlier
        turns and starts from its latest result. ``multitask_strategy`` (server default
        ``reject``): what a create does while a run of the session is active (``reject``:
        409 ``SESSION_BUSY``; ``enqueue``; ``interrupt``; ``rollback``)."""
        return self._perform(_core.create_session(app_id, title, multitask_strategy))

    def list_sessions(self, app_id: uuid.UUID | str, *, limit: int = 25) -> list[Session]:
        """The app's sessions, newest first (``limit`` 1..100)."""
        return self._perform(_core.list_sessions(app_id, limit))

    def get_session(self, app_id: uuid.UUID | str, session_id: uuid.UUID | str) -> SessionDetail:
        """One session with its runs in session order (404 :class:`NotFound` "Coding-agent
        session not found")."""
        return self._perform(_core.get_session(app_id, session_id))

    # --- usage and webhooks ------------------------------------------------------------

    def usage(self, *, start: datetime | None = None, end: datetime | None = None) -> Usage:
        """The tenant's token and time usage over ``[start, end)`` (by when each call
        ended; server default: the 30 days up to now), in total, per app and per model.
        Needs a tenant admin's token."""
        return self._perform(_core.usage(start, end))

    def rotate_webhook_secret(self) -> WebhookSecret:
        """Create or replace the tenant's webhook signing secret; the answer is the only
        time it is shown. Never retried after the request may have reached the server."""
        return self._perform(_core.rotate_webhook_secret())

    def webhook_secret_info(self) -> WebhookSecretInfo:
        """Whether the tenant has a webhook secret, and its version (never the secret)."""
        return self._perform(_core.webhook_secret_info())

    def webhook_deliveries(
        self, app_id: uuid.UUID | str, run_id: uuid.UUID | str
    ) -> list[WebhookDelivery]:
        """The run's webhook deliveries, oldest first (empty without a webhook)."""
        return self._perform(_core.webhook_deliveries(app_id, run_id))

    def stream_ticket(self, app_id: uuid.UUID | str, run_id: uuid.UUID | str) -> StreamTicket:
        """A short-lived ticket for one run's stream (for a browser's EventSource)."""
        return self._perform(_core.stream_ticket(app_id, run_id))

    def stream(
        self, app_id: uuid.UUID | str, run_id: uuid.UUID | str, *, after: int = 0
    ) -> Generator[RunEvent, None, None]:
        """The run's events after seq ``after``, live, ending after the terminal event.

        A dropped connection (or a server that ends the stream early) is reconnected with
        ``Last-Event-ID``; every event is yielded exactly once, in seq order.

        Raises:
            ApiError: the stream was refused (e.g. 404 NotFound).
            StreamError: ``retry.attempts`` reconnects in a row brought no new event.
        """
        cursor = StreamCursor(after)
        path = _core.runs_path(app_id, f"/{uuid.UUID(str(run_id))}/stream")
        timeout = httpx.Timeout(self._timeout, read=_core.STREAM_READ_TIMEOUT)
        fruitless = 0
        while True:
            progressed = False
            failure: object = None
            refused: httpx.Response | None = None  # a 429/503 answer: its Retry-After counts
            headers = {**self._headers, **cursor.headers()}
            try:
                with connect_sse(
                    self._http, "GET", path, timeout=timeout, headers=headers
                ) as source:
                    response = source.response
                    if not response.is_success:
                        response.read()
                        if response.status_code not in _core.RETRY_STATUSES:
                            raise _core.error_of(response, "GET", path)
                        failure, refused = response.status_code, response
                    else:
                        for sse in source.iter_sse():
                            event = cursor.accept(sse.data) if sse.data else None
                            if event is None:
                                continue
                            progressed = True
                            yield event
                            if cursor.finished:
                                return
                        failure = "the server ended the stream before the terminal event"
            except httpx.TransportError as exc:
                failure = exc
            fruitless = 0 if progressed else fruitless + 1
            if fruitless >= self._retry.attempts:
                raise StreamError(f"GET {path}: no progress after {fruitless} tries: {failure!r}")
            time.sleep(self._retry.delay(max(fruitless, 1), refused))
