"""Coding-agent session routes: create, list, get with its runs (docs/design.md 10, issue 12).

A session is an ordered conversation of runs on one app; runs join it with ``session_id``
on ``POST .../coding-agent/runs``. Every route runs the auth chain first (contract 9) and
looks sessions up by session id, app *and* tenant, as runs are (docs/design.md 8.8): a
session of another app or tenant is 404, like none.
"""

from __future__ import annotations

import uuid
from typing import Any

from quart import Blueprint, Response, jsonify
from quart_schema import document_querystring, document_request, document_response, tag

from runtime.sessions.session_object import session_object
from storage.sessions import SessionStore
from web.auth import Authorizer
from web.errors import SESSION_NOT_FOUND, ApiError
from web.schemas.common import document_errors
from web.schemas.sessions import (
    CreateSessionRequest,
    SessionDetailResponse,
    SessionListQuery,
    SessionResponse,
)
from web.services import Services
from web.validation import parse_json, parse_query

READ = "apps.read"
WRITE = "apps.write"


def blueprint(services: Services, authz: Authorizer) -> Blueprint:
    """The ``/admin/apps/{app_id}/coding-agent/sessions`` blueprint."""
    bp = Blueprint(
        "sessions", __name__, url_prefix="/admin/apps/<uuid:app_id>/coding-agent/sessions"
    )

    @bp.post("")
    @tag(["sessions"])
    @document_request(CreateSessionRequest)
    @document_response(SessionResponse, 200)
    @document_errors(401, 403, 404, 422)
    async def create_session(app_id: uuid.UUID) -> dict[str, Any]:
        """Create a coding-agent session on the app. Runs join it with ``session_id``;
        ``multitask_strategy`` (default ``reject``) is what a run create does while a run
        of the session is active, unless the create names its own."""
        ctx = await authz.app_access(app_id, WRITE)
        body = await parse_json(CreateSessionRequest)
        row = await SessionStore(services.db).create(
            session_id=uuid.uuid4(),
            tenant_id=ctx.tenant_id,
            app_id=app_id,
            created_by=ctx.user_id,
            title=body.title,
            multitask_strategy=body.multitask_strategy,
        )
        if row is None:  # the app was deleted since the auth check
            raise ApiError(404, "Published app not found")
        return session_object(row)

    @bp.get("")
    @tag(["sessions"])
    @document_querystring(SessionListQuery)
    @document_response(list[SessionResponse], 200)  # type: ignore[arg-type]
    @document_errors(401, 403, 404, 422)
    async def list_sessions(app_id: uuid.UUID) -> Response:
        """The app's sessions, newest first, at most ``limit`` (1..100, default 25)."""
        ctx = await authz.app_access(app_id, READ)
        query = parse_query(SessionListQuery)
        rows = await SessionStore(services.db).list_for_app(app_id, ctx.tenant_id, query.limit)
        return jsonify([session_object(r) for r in rows])

    @bp.get("/<uuid:session_id>")
    @tag(["sessions"])
    @document_response(SessionDetailResponse, 200)
    @document_errors(401, 403, 404, 422)
    async def get_session(app_id: uuid.UUID, session_id: uuid.UUID) -> dict[str, Any]:
        """One session with its runs in session order (oldest first).
        404 "Coding-agent session not found"."""
        ctx = await authz.app_access(app_id, READ)
        store = SessionStore(services.db)
        row = await store.get(session_id, app_id, ctx.tenant_id)
        if row is None:
            raise ApiError(404, SESSION_NOT_FOUND)
        runs = await store.runs(session_id)
        return {**session_object(row), "runs": [services.runs.serialize(r) for r in runs]}

    return bp
