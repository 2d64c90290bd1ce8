"""``GET /metrics``: Prometheus metrics of this process, behind their own bearer token.

The token is ``RUNWRIGHT_METRICS_TOKEN`` (an operator's secret for the scraper, compared in
constant time); tenant JWTs are never accepted here. Unset, the endpoint is off and
answers 404: no metrics leave the process unless an operator asked for it.

Each scrape first reads the live-run counts from Postgres (one grouped query over the
partial index of queued and running runs) for ``runwright_runs`` and
``runwright_queue_depth``; when that read fails or is slow the rest is still served and
``runwright_database_up`` is 0.
"""

from __future__ import annotations

import asyncio
import hmac

from prometheus_client.exposition import choose_encoder
from quart import Blueprint, Response, request
from quart_schema import security_scheme, tag

from storage import stats
from storage.errors import StorageError
from web.errors import ApiError
from web.schemas.common import document_content, document_errors
from web.services import NotStarted, Services

METRICS_DISABLED = "Metrics are disabled: set RUNWRIGHT_METRICS_TOKEN to enable them"
MISSING_TOKEN = "Missing bearer token"
INVALID_TOKEN = "Invalid metrics token"
DATABASE_READ_SECONDS = 5.0

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="metrics"'}


def blueprint(services: Services) -> Blueprint:
    """The metrics blueprint (its own token, not the tenant auth chain)."""
    bp = Blueprint("metrics", __name__)

    @bp.get("/metrics")
    @tag(["operations"])
    @security_scheme([{"metrics_token": []}])
    @document_errors(401, 404)
    @document_content(200, "text/plain", "Prometheus text exposition (or OpenMetrics).")
    async def metrics() -> Response:
        """Prometheus text exposition (OpenMetrics when the scraper asks for it).

        401 "Missing bearer token" / "Invalid metrics token"; 404 when
        ``RUNWRIGHT_METRICS_TOKEN`` is unset (metrics off).
        """
        _check_token(services)
        try:
            rows = await asyncio.wait_for(stats.live_run_counts(services.db), DATABASE_READ_SECONDS)
        except (StorageError, NotStarted, TimeoutError):
            rows = None
        services.metrics.set_database_view(rows)
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        return Response(encode(services.metrics.registry), content_type=content_type)

    return bp


def _check_token(services: Services) -> None:
    """Raises: ApiError 404 (off), 401 (no or wrong bearer token)."""
    expected = services.settings.metrics_token
    if expected is None:
        raise ApiError(404, METRICS_DISABLED)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, MISSING_TOKEN, headers=_CHALLENGE)
    if not hmac.compare_digest(token.encode(), expected.get_secret_value().encode()):
        raise ApiError(401, INVALID_TOKEN, headers=_CHALLENGE)
