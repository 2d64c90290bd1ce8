"""Checkpoint routes: list and restore (contract 1.8-1.9).

A checkpoint is a revision recorded on a run; listing derives them from runs. Restoring
creates a new draft revision from the checkpoint's files and re-syncs the workspace.
"""

from __future__ import annotations

import uuid
from typing import Any

from quart import Blueprint, Response, jsonify
from quart_schema import document_querystring, document_request, document_response, tag

from runtime.checkpoints import CheckpointNotFound
from runtime.project import ProjectValidationError
from runtime.runs.run_object import checkpoint_object
from storage.apps import RevisionConflict
from web.auth import Authorizer
from web.errors import ApiError
from web.routes.apps import revision_conflict
from web.routes.runs import RUN_NOT_FOUND
from web.schemas.apps import RevisionResponse
from web.schemas.common import document_errors
from web.schemas.runs import CheckpointResponse, ListQuery, RestoreRequest, RestoreResponse
from web.services import Services
from web.validation import parse_json, parse_query

REVISION_NOT_FOUND = "Revision not found"


def blueprint(services: Services, authz: Authorizer) -> Blueprint:
    """The ``/admin/apps/{app_id}/coding-agent/checkpoints`` blueprint."""
    bp = Blueprint(
        "checkpoints", __name__, url_prefix="/admin/apps/<uuid:app_id>/coding-agent/checkpoints"
    )

    @bp.get("")
    @tag(["checkpoints"])
    @document_querystring(ListQuery)
    @document_response(list[CheckpointResponse], 200)  # type: ignore[arg-type]
    @document_errors(401, 403, 404, 422)
    async def list_checkpoints(app_id: uuid.UUID) -> Response:
        """Checkpoints of the app's runs, newest run first, at most ``limit``."""
        ctx = await authz.app_access(app_id, "apps.read")
        limit = parse_query(ListQuery).limit
        rows = await services.runs.runs.list_checkpoints(app_id, ctx.tenant_id, limit)
        return jsonify([checkpoint_object(row) for row in rows])

    @bp.post("/<uuid:checkpoint_id>/restore")
    @tag(["checkpoints"])
    @document_request(RestoreRequest)
    @document_response(RestoreResponse, 200)
    @document_errors(400, 401, 403, 404, 409, 422)
    async def restore(app_id: uuid.UUID, checkpoint_id: uuid.UUID) -> dict[str, Any]:
        """Create a new draft revision from a checkpoint (any revision of this app) and
        point the draft at it; with ``run_id``, that run is relinked to it (only a run that
        has ended).

        Errors, in this order: 404 "Coding-agent run not found"; 409 ``{code:
        RUN_NOT_ENDED, message, run_id, status}`` when ``run_id`` names a queued, running
        or paused run (nothing is restored: its workspace would no longer match its
        checkpoint); 404 "Revision not found"; 422/400 when the checkpoint's files fail
        validation.
        """
        ctx = await authz.app_access(app_id, "apps.write")
        body = await parse_json(RestoreRequest)
        if body.run_id is not None:
            run = await services.runs.runs.get_for_app(body.run_id, app_id, ctx.tenant_id)
            if run is None:
                raise ApiError(404, RUN_NOT_FOUND)
        try:
            revision = await services.checkpoints.restore(
                app_id=app_id,
                tenant_id=ctx.tenant_id,
                user_id=ctx.user_id,
                checkpoint_id=checkpoint_id,
                run_id=body.run_id,
            )
        except CheckpointNotFound:
            raise ApiError(404, REVISION_NOT_FOUND) from None
        except ProjectValidationError as exc:
            raise ApiError(exc.status, exc.detail) from None
        except RevisionConflict as exc:
            raise revision_conflict(exc.latest) from None
        return {
            "checkpoint_id": str(checkpoint_id),
            "revision": RevisionResponse.of(revision).model_dump(mode="json"),
            "run_id": str(body.run_id) if body.run_id else None,
        }

    return bp
