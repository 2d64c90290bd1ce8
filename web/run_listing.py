"""One page of a run list, with its cursors (issue 12 item 4).

Shared by ``GET /admin/apps/{app_id}/coding-agent/runs`` and the tenant-wide
``GET /admin/coding-agent/runs``. The body stays the contract's JSON array of run objects
(contract 1.3), newest first; paging travels in headers: ``Runwright-Next-Cursor`` (older
runs), ``Runwright-Prev-Cursor`` (newer runs) and the same as RFC 8288 ``Link`` rel
``next`` / ``prev``. Pages are keyset pages (:mod:`storage.run_pages`): stable while runs
are being created.

Which cursors a page carries: ``next`` when older runs matched beyond it (or, for a page
read backwards, always: the cursor's own run is older); ``prev`` when newer runs matched
beyond it (or, for a page read forwards from a cursor, always). A first page has no
``prev``; an empty page has neither.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from quart import Response, jsonify, request

from storage import run_pages
from storage.run_pages import HIGHEST, LOWEST, RunFilter
from web import run_cursors
from web.errors import ApiError
from web.run_cursors import Cursor, InvalidCursor
from web.schemas.common import as_utc
from web.schemas.run_lists import RunListQuery
from web.services import Services

NEXT_HEADER = "Runwright-Next-Cursor"
PREV_HEADER = "Runwright-Prev-Cursor"


async def list_page(
    services: Services,
    query: RunListQuery,
    *,
    tenant_id: uuid.UUID,
    app_id: uuid.UUID | None,
    scope_app_id: uuid.UUID | None,
) -> Response:
    """The page ``query`` asks for, as the route's response.

    Args:
        app_id: only this app's runs (None: every app of the tenant).
        scope_app_id: the list cursors belong to (the route's app; None for the tenant
            list, whatever its ``app_id`` filter).

    Raises:
        ApiError: 422 ``[{"type": "cursor_invalid", "loc": ["query", "cursor"], "msg"}]``
            for a cursor that is malformed, altered, or from another list.
    """
    secret = services.jwt_secret
    scope = run_cursors.scope_of(tenant_id, scope_app_id)
    upper = run_pages.before(as_utc(query.created_before)) if query.created_before else HIGHEST
    lower = run_pages.after(as_utc(query.created_after)) if query.created_after else LOWEST
    cursor = None
    if query.cursor is not None:
        try:
            cursor = run_cursors.decode(secret, query.cursor, scope=scope)
        except InvalidCursor as exc:
            raise ApiError(
                422,
                [{"type": "cursor_invalid", "loc": ["query", "cursor"], "msg": str(exc),
                  "input": None}],
            ) from None  # fmt: skip
    forwards = cursor is None or cursor.direction == "older"
    if cursor is not None:
        position = (cursor.created_at, cursor.run_id)
        if forwards:
            upper = min(upper, position)
        else:
            lower = max(lower, position)
    where = RunFilter(tenant_id, app_id, query.status, query.engine, query.session_id)
    rows = await run_pages.page(
        services.db, where, above=lower, below=upper, limit=query.limit + 1,
        newest_first=forwards,
    )  # fmt: skip
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    if not forwards:
        rows.reverse()
    headers: dict[str, str] = {}
    links: list[str] = []
    has_older = more if forwards else True
    has_newer = (cursor is not None) if forwards else more
    if rows:
        if has_older:
            older = Cursor("older", rows[-1]["created_at"], rows[-1]["id"], scope)
            token = run_cursors.encode(secret, older)
            headers[NEXT_HEADER] = token
            links.append(f'<{_url_with(token)}>; rel="next"')
        if has_newer:
            newer = Cursor("newer", rows[0]["created_at"], rows[0]["id"], scope)
            token = run_cursors.encode(secret, newer)
            headers[PREV_HEADER] = token
            links.append(f'<{_url_with(token)}>; rel="prev"')
    if links:
        headers["Link"] = ", ".join(links)
    response = jsonify([services.runs.serialize(r) for r in rows])
    response.headers.update(headers)
    return response


def _url_with(cursor: str) -> str:
    """This request's path and query with ``cursor`` in place of its own."""
    pairs: list[tuple[str, Any]] = [
        (key, value) for key, value in request.args.items(multi=True) if key != "cursor"
    ]
    pairs.append(("cursor", cursor))
    return f"{request.path}?{urlencode(pairs)}"
