"""The model registry routes: ``/admin/models`` (contract section 4).

Tenant admins list their tenant's models plus the global ones and manage their tenant's
models; only platform admins create or change global models. Another tenant's model is
invisible: 404 "Model not found". Keys are write-only and a tenant model's endpoint must
pass the egress policy (web/model_bindings.py, docs/security.md).
"""

from __future__ import annotations

import uuid
from typing import Any

from quart import Blueprint
from quart_schema import document_request, document_response, tag

from storage import models as models_repo
from storage.errors import ForeignKeyViolation
from web.auth import AccessContext, Authorizer
from web.errors import ApiError
from web.model_bindings import prepare_bindings
from web.schemas.common import document_errors
from web.schemas.models import (
    ModelCreateRequest,
    ModelListResponse,
    ModelPatchRequest,
    ModelResponse,
)
from web.services import Services
from web.validation import parse_json

MODEL_NOT_FOUND = "Model not found"
GLOBAL_NEEDS_PLATFORM_ADMIN = "Platform admin required for global models"

READ = "models.read"
WRITE = "models.write"


def _require_platform_admin(ctx: AccessContext) -> None:
    if not ctx.principal.platform_admin:
        raise ApiError(403, GLOBAL_NEEDS_PLATFORM_ADMIN)


def blueprint(services: Services, authz: Authorizer) -> Blueprint:
    """The ``/admin/models`` blueprint."""
    bp = Blueprint("models", __name__, url_prefix="/admin/models")

    @bp.get("")
    @tag(["models"])
    @document_response(ModelListResponse, 200)
    @document_errors(401, 403)
    async def list_models() -> list[dict[str, Any]]:
        """The tenant's models then the global ones, oldest first, with bindings."""
        ctx = await authz.tenant_admin(READ)
        found = await models_repo.list_visible_models(services.db, tenant_id=ctx.tenant_id)
        bindings = await models_repo.list_bindings(services.db, [m.id for m in found])
        return [ModelResponse.of(m, bindings.get(m.id, [])).model_dump(mode="json") for m in found]

    @bp.post("")
    @tag(["models"])
    @document_request(ModelCreateRequest)
    @document_response(ModelResponse, 200)
    @document_errors(401, 403, 422)
    async def create_model() -> dict[str, Any]:
        """Register a model for the tenant, or a global one (platform admins only)."""
        ctx = await authz.tenant_admin(WRITE)
        body = await parse_json(ModelCreateRequest)
        if body.scope == "global":
            _require_platform_admin(ctx)
        model_id = uuid.uuid4()
        specs = await prepare_bindings(
            body.bindings,
            model_id=model_id,
            tenant_model=body.scope != "global",
            settings=services.settings,
            box=services.secret_box,
        )
        try:
            model, bindings = await models_repo.create_model(
                services.db,
                model_id=model_id,
                tenant_id=None if body.scope == "global" else ctx.tenant_id,
                name=body.name,
                capability_type=body.capability_type,
                status=body.status,
                is_active=body.is_active,
                is_default=body.is_default,
                bindings=specs,
            )
        except ForeignKeyViolation:
            raise ApiError(403, "Tenant context required") from None
        return ModelResponse.of(model, bindings).model_dump(mode="json")

    @bp.patch("/<uuid:model_id>")
    @tag(["models"])
    @document_request(ModelPatchRequest)
    @document_response(ModelResponse, 200)
    @document_errors(401, 403, 404, 422)
    async def patch_model(model_id: uuid.UUID) -> dict[str, Any]:
        """Change is_active, is_default, status or (replace) bindings."""
        ctx = await authz.tenant_admin(WRITE)
        model = await models_repo.get_visible_model(
            services.db, model_id=model_id, tenant_id=ctx.tenant_id
        )
        if model is None:
            raise ApiError(404, MODEL_NOT_FOUND)
        if model.tenant_id is None:
            _require_platform_admin(ctx)
        body = await parse_json(ModelPatchRequest)
        specs = None
        if body.bindings is not None:
            previous = await models_repo.list_bindings(services.db, [model.id])
            specs = await prepare_bindings(
                body.bindings,
                model_id=model.id,
                tenant_model=model.tenant_id is not None,
                settings=services.settings,
                box=services.secret_box,
                previous=previous.get(model.id, []),
            )
        try:
            updated, bindings = await models_repo.update_model(
                services.db,
                model,
                is_active=body.is_active,
                is_default=body.is_default,
                status=body.status,
                bindings=specs,
            )
        except models_repo.ModelNotFound:
            raise ApiError(404, MODEL_NOT_FOUND) from None
        return ModelResponse.of(updated, bindings).model_dump(mode="json")

    return bp
