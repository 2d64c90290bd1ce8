"""Completion webhook routes (issue 12 item 5, README "Webhooks").

- ``POST /admin/webhooks/secret``: create or rotate the tenant's signing secret; the
  response is the only time it is shown (stored sealed, runtime/secret_box.py). A rotation
  applies to every attempt from then on, retries of older deliveries included.
- ``GET /admin/webhooks/secret``: whether one exists, its version and age.
- ``GET /admin/apps/{app_id}/coding-agent/runs/{run_id}/webhook-deliveries``: a run's
  deliveries and their state (attempts, last error), for the run's tenant only.
"""

from __future__ import annotations

import uuid
from typing import Any

from quart import Blueprint, Response, jsonify
from quart_schema import document_response, tag

from runtime.webhooks.signing import new_secret, seal_context
from storage.errors import ForeignKeyViolation
from storage.webhooks import WebhookStore
from web.auth import RUN_NOT_FOUND, Authorizer
from web.errors import ApiError
from web.schemas.common import document_errors
from web.schemas.webhooks import (
    WebhookDeliveryResponse,
    WebhookSecretCreated,
    WebhookSecretInfo,
)
from web.services import Services

READ = "apps.read"
WRITE = "apps.write"


def blueprint(services: Services, authz: Authorizer) -> Blueprint:
    """The webhook secret and delivery routes."""
    bp = Blueprint("webhooks", __name__)

    @bp.post("/admin/webhooks/secret")
    @tag(["webhooks"])
    @document_response(WebhookSecretCreated, 200)
    @document_errors(401, 403)
    async def rotate_secret() -> dict[str, Any]:
        """Create the tenant's webhook signing secret, or replace it (rotation). The
        secret is in this response only; deliveries are signed with it from now on."""
        ctx = await authz.tenant_admin(WRITE)
        secret = new_secret()
        sealed = services.secret_box.seal(secret, context=seal_context(ctx.tenant_id))
        try:
            info = await WebhookStore(services.db).set_secret(ctx.tenant_id, sealed)
        except ForeignKeyViolation:
            raise ApiError(403, "Tenant context required") from None
        return WebhookSecretCreated(
            secret=secret, version=info.version, created_at=info.created_at
        ).model_dump(mode="json")

    @bp.get("/admin/webhooks/secret")
    @tag(["webhooks"])
    @document_response(WebhookSecretInfo, 200)
    @document_errors(401, 403)
    async def secret_info() -> dict[str, Any]:
        """Whether the tenant has a webhook secret (its version and creation time; never
        the secret itself)."""
        ctx = await authz.tenant_admin(READ)
        found = await WebhookStore(services.db).get_secret(ctx.tenant_id)
        return WebhookSecretInfo(
            configured=found is not None,
            version=found.version if found else None,
            created_at=found.created_at if found else None,
        ).model_dump(mode="json")

    @bp.get("/admin/apps/<uuid:app_id>/coding-agent/runs/<uuid:run_id>/webhook-deliveries")
    @tag(["webhooks"])
    @document_response(list[WebhookDeliveryResponse], 200)  # type: ignore[arg-type]
    @document_errors(401, 403, 404, 422)
    async def list_deliveries(app_id: uuid.UUID, run_id: uuid.UUID) -> Response:
        """The run's webhook deliveries, oldest first (empty without a webhook). 404
        "Coding-agent run not found"."""
        ctx = await authz.app_access(app_id, READ)
        if await services.runs.runs.get_for_app(run_id, app_id, ctx.tenant_id) is None:
            raise ApiError(404, RUN_NOT_FOUND)
        found = await WebhookStore(services.db).list_for_run(run_id, ctx.tenant_id)
        return jsonify([
            WebhookDeliveryResponse(
                delivery_id=str(d.id), run_id=str(d.run_id), url=d.url,
                event=d.event,  # type: ignore[arg-type]
                state=d.state,  # type: ignore[arg-type]
                attempts=d.attempts,
                next_attempt_at=d.next_attempt_at if d.state == "pending" else None,
                last_attempt_at=d.last_attempt_at, last_status_code=d.last_status_code,
                last_error=d.last_error, created_at=d.created_at, delivered_at=d.delivered_at,
            ).model_dump(mode="json")
            for d in found
        ])  # fmt: skip

    return bp
