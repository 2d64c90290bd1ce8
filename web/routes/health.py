"""Health endpoints (no auth), answered from memory: none of them waits on the pool.

- ``GET /livez``: the process is up and its loop answers. No I/O at all; restart the
  process when it fails.
- ``GET /readyz``: the process may take work: Postgres answered the readiness probe
  recently, the event writer is healthy and the process is not draining
  (:class:`runtime.readiness.Readiness`). Take it out of rotation while it says 503.
- ``GET /healthz``: today's alias of ``/readyz``, keeping its original body.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import document_response, tag

from runtime.readiness import Report
from web.errors import RETRY_AFTER_SECONDS, ApiError
from web.schemas.common import ErrorResponse
from web.services import Services


class LiveResponse(BaseModel):
    """``{"status": "ok"}``."""

    status: str = Field(examples=["ok"])


class ReadyResponse(BaseModel):
    """``{"status": "ready", "checks": {"database": "ok", ...}}``."""

    status: str = Field(examples=["ready"])
    checks: dict[str, str] = Field(
        description='Check name -> "ok" or why it fails.',
        examples=[
            {"database": "ok", "event_writer": "ok", "webhook_delivery": "ok", "draining": "ok"}
        ],
    )


class HealthResponse(BaseModel):
    """``{"status": "ok", "database": "ok"}``."""

    status: str
    database: str


def not_ready(report: Report) -> ApiError:
    """The 503 of a failed readiness report: ``{"detail": {"code": "NOT_READY", "message",
    "checks"}}`` with ``Retry-After``."""
    return ApiError(
        503,
        {
            "code": "NOT_READY",
            "message": "Not ready: " + "; ".join(report.reasons),
            "checks": report.checks,
        },
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def blueprint(services: Services) -> Blueprint:
    """The health blueprint (no auth)."""
    bp = Blueprint("health", __name__)

    @bp.get("/livez")
    @tag(["health"])
    @document_response(LiveResponse, 200)
    async def livez() -> dict[str, Any]:
        """Liveness: the process is up and serving (no I/O)."""
        return LiveResponse(status="ok").model_dump()

    @bp.get("/readyz")
    @tag(["health"])
    @document_response(ReadyResponse, 200)
    @document_response(ErrorResponse, 503)
    async def readyz() -> dict[str, Any]:
        """Readiness: database reachable (a dedicated probe connection, checked every
        ``RUNWRIGHT_READINESS_INTERVAL_SECONDS``), event writer healthy, webhook delivery
        worker running, not draining.
        503 ``NOT_READY`` with the failing checks and ``Retry-After`` otherwise."""
        report = services.readiness.report()
        if not report.ready:
            raise not_ready(report)
        return ReadyResponse(status="ready", checks=report.checks).model_dump()

    @bp.get("/healthz")
    @tag(["health"])
    @document_response(HealthResponse, 200)
    @document_response(ErrorResponse, 503)
    async def healthz() -> dict[str, str]:
        """Alias of ``/readyz`` with the original body ``{"status": "ok", "database":
        "ok"}``; 503 ``NOT_READY`` as ``/readyz``."""
        report = services.readiness.report()
        if not report.ready:
            raise not_ready(report)
        return HealthResponse(status="ok", database="ok").model_dump()

    return bp
