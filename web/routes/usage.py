"""``GET /admin/usage``: a tenant's token and time totals over a range (issue 12 item 3).

The contract 9 chain without an app (steps 1-4, scope ``apps.read``): the tenant is the one
the chain selects, and only its calls are summed (``run_usage.tenant_id``), per app and per
model too. The range is on when each call ended.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from quart import Blueprint
from quart_schema import document_querystring, document_response, tag

from storage import usage as usage_repo
from web.auth import Authorizer
from web.errors import ApiError
from web.schemas.common import as_utc, document_errors, iso_utc
from web.schemas.usage import UsageQuery, UsageResponse
from web.services import Services
from web.validation import parse_query

READ = "apps.read"
DEFAULT_RANGE = timedelta(days=30)
EARLIEST = datetime.min.replace(tzinfo=UTC)  # the default start never leaves the datetime range


def _totals(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "prompt_tokens": row["prompt_tokens"],
        "completion_tokens": row["completion_tokens"],
        "total_tokens": row["total_tokens"],
        "model_calls": row["model_calls"],
        "model_calls_without_usage": row["model_calls_unreported"],
        "model_seconds": row["model_ms"] / 1000,
        "tool_calls": row["tool_calls"],
        "tool_seconds": row["tool_ms"] / 1000,
        "runs": row["runs"],
    }


def _id(value: Any) -> str | None:
    return None if value is None else str(value)


def blueprint(services: Services, authz: Authorizer) -> Blueprint:
    """The ``/admin/usage`` blueprint."""
    bp = Blueprint("usage", __name__, url_prefix="/admin/usage")

    @bp.get("")
    @tag(["usage"])
    @document_querystring(UsageQuery)
    @document_response(UsageResponse, 200)
    @document_errors(401, 403, 422)
    async def tenant_usage() -> dict[str, Any]:
        """The tenant's usage over ``[from, to)`` (default: the last 30 days): tokens as the
        models reported them, model and tool wall time, runs; in total, per app and per
        model. 422 when ``from`` is not before ``to`` or a parameter is unknown."""
        ctx = await authz.tenant_admin(READ)
        query = parse_query(UsageQuery)
        end = as_utc(query.end) if query.end else datetime.now(UTC)
        start = (
            as_utc(query.start)
            if query.start
            else max(EARLIEST + DEFAULT_RANGE, end) - DEFAULT_RANGE
        )
        if start >= end:
            raise ApiError(
                422,
                [{"type": "value_error", "loc": ["query", "from"],
                  "msg": "from must be before to", "input": iso_utc(start)}],
            )  # fmt: skip
        found = await usage_repo.tenant_usage(services.db, ctx.tenant_id, start, end)
        return {
            "tenant_id": str(ctx.tenant_id),
            "from": iso_utc(start),
            "to": iso_utc(end),
            "totals": _totals(found.total),
            "by_app": [{"app_id": _id(r["app_id"]), **_totals(r)} for r in found.by_app],
            "by_model": [
                {"model_id": _id(r["model_id"]), "model_name": r["model_name"], **_totals(r)}
                for r in found.by_model
            ],
        }

    return bp
