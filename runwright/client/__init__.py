"""A Python client for Runwright's HTTP API (httpx + httpx-sse, typed pydantic models).

``Client`` (blocking) and ``AsyncClient`` (asyncio) have the same methods: apps
(``create_app``, ``builder_state``, ``get_revision``, ``get_agent_settings``,
``set_agent_settings``), runs (``create_run``, ``list_runs``, ``runs_page``,
``tenant_runs_page``, ``iter_runs``, ``iter_tenant_runs``, ``get_run``, ``cancel_run``,
``resume_run``, ``stream_ticket``, ``stream``), approvals (``approve``, ``reject``),
sessions (``create_session``, ``list_sessions``, ``get_session``), ``usage`` and webhooks
(``rotate_webhook_secret``, ``webhook_secret_info``, ``webhook_deliveries``).

- Retries: a call refused or not answered in time (connection refused, 429, 503) is
  retried; calls that are safe to send twice (reads, cancel, run creation, which carries
  one ``Idempotency-Key`` across its retries, and approval decisions, which the server
  answers with the run when repeated) are also retried after a broken connection or a
  502/504. See :class:`RetryPolicy`.
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
from runwright.client._core import RetryPolicy, RunFilters
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
    AgentSettings,
    App,
    AppUsage,
    BuilderState,
    ModelUsage,
    PendingApproval,
    Revision,
    Run,
    RunEvent,
    RunPage,
    RunStatus,
    RunUsage,
    Session,
    SessionDetail,
    StreamTicket,
    Usage,
    UsageTotals,
    WebhookDelivery,
    WebhookSecret,
    WebhookSecretInfo,
)

__all__ = [
    "AgentSettings",
    "ApiError",
    "App",
    "AppUsage",
    "AsyncClient",
    "BadRequest",
    "BuilderState",
    "Client",
    "Conflict",
    "Forbidden",
    "ModelUsage",
    "NotFound",
    "PendingApproval",
    "RetryPolicy",
    "Revision",
    "Run",
    "RunEvent",
    "RunFilters",
    "RunPage",
    "RunStatus",
    "RunUsage",
    "RunwrightError",
    "Session",
    "SessionDetail",
    "StreamError",
    "StreamTicket",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "Usage",
    "UsageTotals",
    "ValidationFailed",
    "WebhookDelivery",
    "WebhookSecret",
    "WebhookSecretInfo",
]
