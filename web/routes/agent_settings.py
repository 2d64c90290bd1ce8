"""An app's coding-agent settings: its default approval policy (issue 12, item 2).

``/admin/apps/{app_id}/coding-agent/settings``: read with ``apps.read``, replace with
``apps.write``; the auth chain (contract 9) runs first, 404 for an app of another tenant.
"""

from __future__ import annotations

import uuid
from typing import Any

from quart import Blueprint
from quart_schema import document_request, document_response, tag

from storage import apps as apps_repo
from web.auth import APP_NOT_FOUND, Authorizer
from web.errors import ApiError
from web.schemas.agent_settings import AgentSettings
from web.schemas.common import document_errors
from web.services import Services
from web.validation import parse_json

READ = "apps.read"
WRITE = "apps.write"


def blueprint(services: Services, authz: Authorizer) -> Blueprint:
    """The ``/admin/apps/{app_id}/coding-agent/settings`` blueprint."""
    bp = Blueprint(
        "agent_settings", __name__, url_prefix="/admin/apps/<uuid:app_id>/coding-agent/settings"
    )

    @bp.get("")
    @tag(["apps"])
    @document_response(AgentSettings, 200)
    @document_errors(401, 403, 404, 422)
    async def get_settings(app_id: uuid.UUID) -> dict[str, Any]:
        """The app's coding-agent settings."""
        ctx = await authz.app_access(app_id, READ)
        policy = await apps_repo.get_approval_policy(
            services.db, app_id=app_id, tenant_id=ctx.tenant_id
        )
        if policy is None:
            raise ApiError(404, APP_NOT_FOUND)
        return {"approval_policy": policy}

    @bp.put("")
    @tag(["apps"])
    @document_request(AgentSettings)
    @document_response(AgentSettings, 200)
    @document_errors(401, 403, 404, 422)
    async def put_settings(app_id: uuid.UUID) -> dict[str, Any]:
        """Replace the app's coding-agent settings (new runs use them)."""
        ctx = await authz.app_access(app_id, WRITE)
        body = await parse_json(AgentSettings)
        policy = await apps_repo.set_approval_policy(
            services.db, app_id=app_id, tenant_id=ctx.tenant_id, policy=body.approval_policy
        )
        if policy is None:
            raise ApiError(404, APP_NOT_FOUND)
        return {"approval_policy": policy}

    return bp
