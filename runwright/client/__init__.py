"""A Python client for Runwright's HTTP API (httpx + httpx-sse, typed pydantic models).

``Client`` (blocking) and ``AsyncClient`` (asyncio) have the same methods: apps
(``create_app``, ``builder_state``, ``get_revision``) and runs (``create_run``,
``list_runs``, ``get_run``, ``cancel_run``, ``resume_run``, ``stream_ticket``, ``stream``).

- Retries: a call that failed before the server could act on it (connection refused, 429,
  503) is retried; calls that are safe to send twice (reads, cancel, and run creation,
  which carries one ``Idempotency-Key`` across its retries) are also retried after a broken
  connection or a 502/504. See :class:`RetryPolicy`.
- ``stream()`` yields each event once, in seq order, reconnecting with ``Last-Event-ID``
  when the connection drops, until the run's terminal event.
- Errors: :class:`ApiError` subclasses by status carry the API's ``detail`` unchanged.

Example::

    from runwright.client import Client

    with Client("http://127.0.0.1:8000", token, tenant_id=tenant) as rw:
        run = rw.create_run(app_id, "Rename the heading")
        for event in rw.stream(app_id, run.run_id):
            print(event.seq, event.event)
"""

from runwright.client._async import AsyncClient
from runwright.client._core import RetryPolicy
from runwright.client._sync import Client
from runwright.client.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    RunwrightError,
    StreamError,
    TransportError,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from runwright.client.models import (
    App,
    BuilderState,
    Revision,
    Run,
    RunEvent,
    RunStatus,
    RunUsage,
    StreamTicket,
)

__all__ = [
    "ApiError",
    "App",
    "AsyncClient",
    "BadRequest",
    "BuilderState",
    "Client",
    "Conflict",
    "Forbidden",
    "NotFound",
    "RetryPolicy",
    "Revision",
    "Run",
    "RunEvent",
    "RunStatus",
    "RunUsage",
    "RunwrightError",
    "StreamError",
    "StreamTicket",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "ValidationFailed",
]
