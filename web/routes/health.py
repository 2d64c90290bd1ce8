"""``GET /healthz``: the process is up and the database answers."""

from __future__ import annotations

from pydantic import BaseModel
from quart import Blueprint
from quart_schema import document_response, tag

from storage.errors import StorageError
from web.errors import ApiError
from web.schemas.common import ErrorResponse
from web.services import NotStarted, Services


class HealthResponse(BaseModel):
    """``{"status": "ok", "database": "ok"}``."""

    status: str
    database: str


def blueprint(services: Services) -> Blueprint:
    """The health blueprint (no auth)."""
    bp = Blueprint("health", __name__)

    @bp.get("/healthz")
    @tag(["health"])
    @document_response(HealthResponse, 200)
    @document_response(ErrorResponse, 503)
    async def healthz() -> dict[str, str]:
        """Liveness and database reachability; 503 ``"Database unavailable"`` otherwise."""
        try:
            await services.db.fetchval("health_ping")
        except (StorageError, NotStarted):
            raise ApiError(503, "Database unavailable") from None
        return HealthResponse(status="ok", database="ok").model_dump()

    return bp
