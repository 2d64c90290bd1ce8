"""The blocking client: :class:`Client` performs the calls described by
:mod:`runwright.client._core` with an ``httpx.Client``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Generator
from typing import Any, TypeVar

import httpx
from httpx_sse import connect_sse

from runwright.client import _core
from runwright.client._core import DEFAULT_LIMITS, Call, RetryPolicy, StreamCursor
from runwright.client.errors import StreamError, TransportError
from runwright.client.models import App, BuilderState, Revision, Run, RunEvent, StreamTicket

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
            base_url=base_url, timeout=timeout, limits=limits or DEFAULT_LIMITS
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
        ``approval_timeout_seconds``, ``webhook``, ``idempotency_key`` (default: a fresh one
        per call, reused by its retries)."""
        return self._perform(_core.create_run(app_id, input, **options))

    def list_runs(self, app_id: uuid.UUID | str, *, limit: int = 25) -> list[Run]:
        """The app's runs, newest first (``limit`` 1..100)."""
        return self._perform(_core.list_runs(app_id, limit))

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
    ) -> Run:
        """Resume a paused run with ``payload`` (409 :class:`Conflict` if not paused) and,
        for a run waiting on an approval request, ``approval``: ``{request_id, decision:
        "approve" | "reject", arguments?, message?}``."""
        return self._perform(_core.resume_run(app_id, run_id, payload, approval))

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
