"""Published apps and the builder's revision routes (contract sections 1 and 8).

Every route runs the auth chain first (contract 9), then reads its body.
"""

from __future__ import annotations

import uuid
from typing import Any

from quart import Blueprint
from quart_schema import document_request, document_response, tag

from runtime.paths import normalize_path
from runtime.project import (
    ProjectValidationError,
    TemplateNotFound,
    load_template,
    validate_project,
)
from storage import apps as apps_repo
from storage.apps import AppNotFound, Revision, RevisionConflict
from storage.errors import UniqueViolation
from web.auth import APP_NOT_FOUND, Authorizer
from web.errors import ApiError
from web.schemas.apps import (
    AppCreateRequest,
    AppListResponse,
    AppResponse,
    BuilderStateResponse,
    RevisionCreateRequest,
    RevisionResponse,
)
from web.schemas.common import document_errors, iso_utc
from web.services import Services
from web.validation import parse_json

SLUG_TAKEN = "App slug already exists"
REVISION_NOT_FOUND = "Revision not found"

READ = "apps.read"
WRITE = "apps.write"


def revision_conflict(latest: Revision | None) -> ApiError:
    """409 ``REVISION_CONFLICT`` exactly as contract 1.2 step 3 (no ``field``)."""
    return ApiError(
        409,
        {
            "code": "REVISION_CONFLICT",
            "latest_revision_id": str(latest.id) if latest else None,
            "latest_updated_at": iso_utc(latest.created_at) if latest else None,
            "message": "Draft revision is stale",
        },
    )


def blueprint(services: Services, authz: Authorizer) -> Blueprint:
    """The ``/admin/apps`` blueprint."""
    bp = Blueprint("apps", __name__, url_prefix="/admin/apps")

    @bp.post("")
    @tag(["apps"])
    @document_request(AppCreateRequest)
    @document_response(AppResponse, 200)
    @document_errors(400, 401, 403, 409, 422)
    async def create_app() -> dict[str, Any]:
        """Create an app with revision 1 from its template; the draft pointer names it.

        Errors: 409 "App slug already exists"; 400 ``BUILDER_TEMPLATE_NOT_FOUND``.
        """
        ctx = await authz.tenant_admin(WRITE)
        body = await parse_json(AppCreateRequest)
        try:
            files = load_template(body.template_key)
        except TemplateNotFound as exc:
            raise ApiError(400, exc.detail()) from None
        try:
            files = validate_project(files, apps_repo.DEFAULT_ENTRY_FILE, services.settings)
        except ProjectValidationError as exc:
            raise ApiError(exc.status, exc.detail) from None
        try:
            app, _ = await apps_repo.create_app(
                services.db,
                tenant_id=ctx.tenant_id,
                name=body.name,
                slug=body.slug,
                template_key=body.template_key,
                files=files,
                created_by=ctx.user_id,
            )
        except UniqueViolation:
            raise ApiError(409, SLUG_TAKEN) from None
        return AppResponse.of(app).model_dump(mode="json")

    @bp.get("")
    @tag(["apps"])
    @document_response(AppListResponse, 200)
    @document_errors(401, 403)
    async def list_apps() -> list[dict[str, Any]]:
        """The tenant's apps, newest first."""
        ctx = await authz.tenant_admin(READ)
        found = await apps_repo.list_apps(services.db, tenant_id=ctx.tenant_id)
        return [AppResponse.of(app).model_dump(mode="json") for app in found]

    @bp.get("/<uuid:app_id>")
    @tag(["apps"])
    @document_response(AppResponse, 200)
    @document_errors(401, 403, 404, 422)
    async def get_app(app_id: uuid.UUID) -> dict[str, Any]:
        """One app of the tenant; 404 "Published app not found" otherwise."""
        ctx = await authz.app_access(app_id, READ)
        assert ctx.app is not None
        return AppResponse.of(ctx.app).model_dump(mode="json")

    @bp.get("/<uuid:app_id>/builder/state")
    @tag(["builder"])
    @document_response(BuilderStateResponse, 200)
    @document_errors(401, 403, 404, 422)
    async def builder_state(app_id: uuid.UUID) -> dict[str, Any]:
        """The app with its full current draft (and published) revision."""
        ctx = await authz.app_access(app_id, READ)
        app = ctx.app
        assert app is not None
        draft = published = None
        if app.current_draft_revision_id is not None:
            draft = await apps_repo.get_revision(
                services.db, revision_id=app.current_draft_revision_id, app_id=app.id
            )
        if app.current_published_revision_id is not None:
            published = await apps_repo.get_revision(
                services.db, revision_id=app.current_published_revision_id, app_id=app.id
            )
        state = BuilderStateResponse(
            app=AppResponse.of(app),
            current_draft_revision=RevisionResponse.of(draft) if draft else None,
            current_published_revision=RevisionResponse.of(published) if published else None,
        )
        return state.model_dump(mode="json")

    @bp.get("/<uuid:app_id>/revisions/<uuid:revision_id>")
    @tag(["builder"])
    @document_response(RevisionResponse, 200)
    @document_errors(401, 403, 404, 422)
    async def get_revision(app_id: uuid.UUID, revision_id: uuid.UUID) -> dict[str, Any]:
        """One revision of the app; 404 "Revision not found" otherwise."""
        await authz.app_access(app_id, READ)
        revision = await apps_repo.get_revision(services.db, revision_id=revision_id, app_id=app_id)
        if revision is None:
            raise ApiError(404, REVISION_NOT_FOUND)
        return RevisionResponse.of(revision).model_dump(mode="json")

    @bp.post("/<uuid:app_id>/builder/revisions")
    @tag(["builder"])
    @document_request(RevisionCreateRequest)
    @document_response(RevisionResponse, 200)
    @document_errors(400, 401, 403, 404, 409, 422)
    async def create_revision(app_id: uuid.UUID) -> dict[str, Any]:
        """Store a new draft revision from a full file set and move the draft pointer.

        Order: auth; body (422); stale ``base_revision_id`` -> 409 ``REVISION_CONFLICT``;
        project validation (400 ``BUILDER_PATCH_POLICY_VIOLATION`` / 422
        ``BUILDER_COMPILE_FAILED``); a writer that loses a race also gets 409.
        """
        ctx = await authz.app_access(app_id, WRITE)
        app = ctx.app
        assert app is not None
        body = await parse_json(RevisionCreateRequest)
        current = await apps_repo.current_draft(services.db, app_id=app.id, tenant_id=ctx.tenant_id)
        current_id = current.id if current else None
        if body.base_revision_id is not None and body.base_revision_id != current_id:
            raise revision_conflict(current)
        entry_file = body.entry_file or (
            current.entry_file if current else apps_repo.DEFAULT_ENTRY_FILE
        )
        try:
            files = validate_project(body.files, entry_file, services.settings)
        except ProjectValidationError as exc:
            raise ApiError(exc.status, exc.detail) from None
        try:
            revision = await apps_repo.create_draft_revision(
                services.db,
                app_id=app.id,
                tenant_id=ctx.tenant_id,
                files=files,
                entry_file=normalize_path(entry_file),  # valid: checked above
                base_revision_id=current_id,
                created_by=ctx.user_id,
            )
        except RevisionConflict as exc:
            raise revision_conflict(exc.latest) from None
        except AppNotFound:
            raise ApiError(404, APP_NOT_FOUND) from None
        return RevisionResponse.of(revision).model_dump(mode="json")

    return bp
