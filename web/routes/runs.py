"""Coding-agent run routes: create, list, get, stream, resume, cancel (contract 1.1-1.7).

Each route runs the auth chain first (contract 9) and looks runs up by run id, app *and*
tenant (docs/design.md 8.8). Lifecycle commands go to the run's actor through the run service;
streams only watch (docs/design.md 8.1).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from quart import Blueprint, Response, request
from quart_schema import (
    document_headers,
    document_querystring,
    document_request,
    document_response,
    tag,
)

from runtime.engines.scripted import ScriptError, validate_script
from runtime.runs import states
from runtime.runs.service import CreateRun
from runtime.tools.selection import normalize_selection
from storage.idempotency import IdempotencyKeyTaken
from web import idempotency, run_listing, sse, stream_tickets
from web.auth import BEARER_CHALLENGE, RUN_NOT_FOUND, Authorizer
from web.errors import ApiError
from web.schemas.common import document_content, document_errors
from web.schemas.run_lists import RunListHeaders, RunListQuery
from web.schemas.runs import (
    MAX_SEQ,
    CreateRunHeaders,
    CreateRunRequest,
    ResumeHeaders,
    ResumeRequest,
    RunResponse,
    StreamEvent,
    StreamHeaders,
    StreamQuery,
    StreamTicketResponse,
)
from web.services import Services
from web.stream_quota import RETRY_AFTER_SECONDS as STREAM_RETRY_AFTER_SECONDS
from web.stream_quota import StreamQuotaExceeded
from web.validation import parse_json, parse_query
from web.webhook_targets import check_webhook

READ = "apps.read"
WRITE = "apps.write"
INVALID_TICKET = "Invalid or expired stream ticket"


def _invalid(loc: list[str], msg: str, value: Any, kind: str = "value_error") -> ApiError:
    return ApiError(422, [{"type": kind, "loc": loc, "msg": msg, "input": value}])


def blueprint(services: Services, authz: Authorizer) -> Blueprint:
    """The ``/admin/apps/{app_id}/coding-agent/runs`` blueprint."""
    bp = Blueprint("runs", __name__, url_prefix="/admin/apps/<uuid:app_id>/coding-agent/runs")

    async def find_run(app_id: uuid.UUID, run_id: uuid.UUID, scope: str) -> dict[str, Any]:
        """The run's row, for routes that return it. Routes that only need the run to exist
        (stream, resume, cancel) use ``authz.run_access``: same checks and 404, and the run
        is looked up in the auth query's round trip."""
        ctx = await authz.app_access(app_id, scope)
        row = await services.runs.runs.get_for_app(run_id, app_id, ctx.tenant_id)
        if row is None:
            raise ApiError(404, RUN_NOT_FOUND)
        return row

    @bp.post("")
    @tag(["runs"])
    @document_request(CreateRunRequest)
    @document_headers(CreateRunHeaders)
    @document_response(RunResponse, 200)
    @document_errors(400, 401, 403, 404, 409, 422, 429)
    async def create_run(app_id: uuid.UUID) -> dict[str, Any]:
        """Create a run on the app's current draft; it starts executing at once.

        Errors (contract 1.2, in this order): 409 ``REVISION_CONFLICT``; 400 "input is
        required"; 400 ``CODING_AGENT_MODEL_UNAVAILABLE``; 400
        ``CODING_AGENT_ENGINE_UNAVAILABLE`` / ``CODING_AGENT_ENGINE_UNSUPPORTED_RUNTIME``.
        429 ``TENANT_QUEUE_FULL`` (with ``Retry-After``) when the tenant already has
        ``RUNWRIGHT_MAX_QUEUED_RUNS_PER_TENANT`` queued runs.
        With ``session_id`` (docs/design.md 10): 404 "Coding-agent session not found" right
        after the app check; 409 ``SESSION_BUSY`` when ``multitask_strategy`` is
        ``reject`` and a run of the session is queued, running or paused.
        With ``Idempotency-Key``: a repeat of a request that created a run returns that
        first response (200, no new run); the key with another body is 422
        ``IDEMPOTENCY_KEY_REUSED``; 409 ``IDEMPOTENCY_KEY_BUSY`` if the key expired while
        the request ran (retry).
        With ``webhook``: 422 on ``body.webhook`` when the egress policy refuses the URL or
        the tenant has no webhook secret.
        """
        ctx = await authz.app_access(app_id, WRITE)
        body = await parse_json(CreateRunRequest)
        scripted_on = services.settings.scripted_engine_enabled
        if body.engine == "scripted" and not scripted_on:
            raise _invalid(
                ["body", "engine"], "Input should be 'native' or 'opencode'", body.engine,
                "literal_error",
            )  # fmt: skip
        script = None
        if body.script is not None:
            if body.engine != "scripted":
                raise _invalid(
                    ["body", "script"], "script is only allowed with the scripted engine", None
                )
            try:
                script = validate_script(body.script)
            except ScriptError as exc:
                raise _invalid(["body", "script"], str(exc), None) from None
        tools = None
        if body.tools is not None:
            if body.engine != "native":
                raise _invalid(
                    ["body", "tools"], "tools is only allowed with the native engine", None
                )
            try:
                tools = normalize_selection(body.tools)
            except ValueError as exc:
                raise _invalid(["body", "tools"], str(exc), body.tools) from None
        if body.multitask_strategy is not None and body.session_id is None:
            raise _invalid(
                ["body", "multitask_strategy"], "multitask_strategy requires session_id",
                body.multitask_strategy,
            )  # fmt: skip
        key = await idempotency.request_key(
            ctx.tenant_id, app_id, f"{ctx.principal.kind}:{ctx.principal.subject}",
            services.settings.idempotency_key_ttl_seconds,
        )  # fmt: skip
        if body.webhook is not None:
            if key is not None:  # a repeat is answered before the URL is checked again
                first = await idempotency.replay_existing(services.db, key)
                if first is not None:
                    return first  # type: ignore[no-any-return]
            await check_webhook(services.db, services.settings, ctx.tenant_id, body.webhook)
        try:
            row = await services.runs.create(
                CreateRun(
                    tenant_id=ctx.tenant_id,
                    user_id=ctx.user_id,
                    app_id=app_id,
                    input=body.input,
                    engine=body.engine,
                    base_revision_id=body.base_revision_id,
                    model_id=body.model_id,
                    messages=list(body.messages or []),
                    script=script,
                    idempotency=key,
                    approval_policy=body.approval_policy,
                    approval_timeout_seconds=body.approval_timeout_seconds,
                    session_id=body.session_id,
                    multitask_strategy=body.multitask_strategy,
                    webhook=body.webhook,
                    tools=tools,
                )
            )
        except IdempotencyKeyTaken as exc:  # a repeat, or a concurrent duplicate won
            assert key is not None
            return await idempotency.replay_winner(  # type: ignore[no-any-return]
                services.db, key, exc.stored
            )
        return services.runs.serialize(row)

    @bp.get("")
    @tag(["runs"])
    @document_querystring(RunListQuery)
    @document_response(list[RunResponse], 200, RunListHeaders)  # type: ignore[arg-type]
    @document_errors(401, 403, 404, 422)
    async def list_runs(app_id: uuid.UUID) -> Response:
        """The app's runs, newest first, at most ``limit`` (1..100, default 25), filtered
        by ``status``, ``engine``, ``session_id``, ``created_before`` / ``created_after``.
        Paging: the
        ``Runwright-Next-Cursor`` / ``Runwright-Prev-Cursor`` headers (and ``Link``) give
        the ``cursor`` of the older / newer page. An unknown parameter, or a cursor that was
        altered or belongs to another list, is a 422."""
        ctx = await authz.app_access(app_id, READ)
        query = parse_query(RunListQuery)
        return await run_listing.list_page(
            services, query, tenant_id=ctx.tenant_id, app_id=app_id, scope_app_id=app_id
        )

    @bp.get("/<uuid:run_id>")
    @tag(["runs"])
    @document_response(RunResponse, 200)
    @document_errors(401, 403, 404, 422)
    async def get_run(app_id: uuid.UUID, run_id: uuid.UUID) -> dict[str, Any]:
        """One run. 404 "Coding-agent run not found"."""
        return services.runs.serialize(await find_run(app_id, run_id, READ))

    @bp.post("/<uuid:run_id>/stream-ticket")
    @tag(["runs"])
    @document_response(StreamTicketResponse, 200)
    @document_errors(401, 403, 404, 422)
    async def stream_ticket(app_id: uuid.UUID, run_id: uuid.UUID) -> dict[str, Any]:
        """A short-lived, read-only ticket for this run's stream, for browsers (EventSource
        cannot send ``Authorization``): open ``stream_url`` (``.../stream?ticket=...``).
        It opens only this run's stream, until ``expires_at``
        (``RUNWRIGHT_STREAM_TICKET_TTL_SECONDS``); it is no bearer token for anything else.
        Same checks as the stream itself."""
        ctx = await authz.run_access(app_id, run_id, WRITE)
        ticket, expires = stream_tickets.issue(
            services.jwt_secret,
            subject=ctx.principal.subject,
            tenant_id=ctx.tenant_id,
            app_id=app_id,
            run_id=run_id,
            ttl_seconds=services.settings.stream_ticket_ttl_seconds,
        )
        path = request.path.rsplit("/", 1)[0] + "/stream"
        return StreamTicketResponse(
            ticket=ticket,
            expires_at=datetime.fromtimestamp(expires, UTC),
            stream_url=f"{path}?{urlencode({'ticket': ticket})}",
        ).model_dump(mode="json")

    async def stream_access(app_id: uuid.UUID, run_id: uuid.UUID, ticket: str | None) -> uuid.UUID:
        """The stream's auth: a stream ticket when ``?ticket=`` is given (then it alone
        counts), else the bearer chain of contract 9. Returns the tenant id.

        Raises:
            ApiError: 401 "Invalid or expired stream ticket"; 404 "Coding-agent run not
                found" when the ticket's run is gone from its app and tenant; else as
                :meth:`Authorizer.run_access`.
        """
        if ticket is None:
            return (await authz.run_access(app_id, run_id, WRITE)).tenant_id
        try:
            granted = stream_tickets.verify(
                services.jwt_secret, ticket, app_id=app_id, run_id=run_id
            )
        except stream_tickets.InvalidTicket:
            raise ApiError(401, INVALID_TICKET, headers=BEARER_CHALLENGE) from None
        if await services.runs.runs.get_for_app(run_id, app_id, granted.tenant_id) is None:
            raise ApiError(404, RUN_NOT_FOUND)
        return granted.tenant_id

    @bp.get("/<uuid:run_id>/stream")
    @tag(["runs"])
    @document_querystring(StreamQuery)
    @document_headers(StreamHeaders)
    @document_errors(401, 403, 404, 422, 429)
    @document_content(
        200, "text/event-stream", "The run's events as server-sent events.", StreamEvent
    )
    async def stream_run(app_id: uuid.UUID, run_id: uuid.UUID) -> Response:
        """Server-sent events of the run (``text/event-stream``), from the start or after
        ``Last-Event-ID`` / ``?after=``; ends after the terminal event. Each message is
        ``id: <seq>`` + ``data: {"event": ..., "run_id", "app_id", "seq", "ts", "stage",
        "payload", "diagnostics"}``. Opening or closing a stream never affects the run.
        429 ``TOO_MANY_STREAMS`` (with ``Retry-After``) when the tenant already holds
        ``RUNWRIGHT_MAX_STREAMS_PER_TENANT`` open streams on this node.
        Auth: the bearer token, or ``?ticket=`` from ``POST .../stream-ticket`` (401
        "Invalid or expired stream ticket").
        """
        query = parse_query(StreamQuery)
        tenant_id = await stream_access(app_id, run_id, query.ticket)
        after = query.after
        header = request.headers.get("Last-Event-ID")
        if header is not None and header.strip():
            try:
                after = int(header.strip())
            except ValueError:
                raise _invalid(
                    ["header", "last-event-id"], "Last-Event-ID must be an event seq", header
                ) from None
            if after < 0:
                raise _invalid(["header", "last-event-id"], "Last-Event-ID must be >= 0", header)
            if after > MAX_SEQ:
                raise _invalid(
                    ["header", "last-event-id"], f"Last-Event-ID must be <= {MAX_SEQ}", header
                )

        async def is_active() -> bool:
            row = await services.runs.runs.get(run_id)
            return row is not None and row["status"] in states.ACTIVE

        try:
            body = services.stream_quota.guard(
                tenant_id,
                sse.stream_run(
                    services.runs.broker, services.runs.events, run_id, app_id, after, is_active
                ),
            )
        except StreamQuotaExceeded as exc:
            raise ApiError(
                429,
                {
                    "code": "TOO_MANY_STREAMS",
                    "message": f"This tenant already holds {exc.limit} open streams; "
                    "close one or retry later.",
                },
                headers={"Retry-After": str(STREAM_RETRY_AFTER_SECONDS)},
            ) from None
        response = Response(body, status=200, headers=sse.HEADERS)
        response.timeout = None  # Quart would end the stream after 60 s otherwise
        return response

    @bp.post("/<uuid:run_id>/resume")
    @tag(["runs"])
    @document_request(ResumeRequest)
    @document_headers(ResumeHeaders)
    @document_response(RunResponse, 200)
    @document_errors(401, 403, 404, 409, 422, 503)
    async def resume_run(app_id: uuid.UUID, run_id: uuid.UUID) -> dict[str, Any]:
        """Resume a paused run; ``payload`` is stored and handed to the engine.
        With ``Idempotency-Key``: a repeat of a resume the run applied (same key, same
        caller, same body) answers 200 with the run as it is now, never resuming it again
        (even if it has paused again since); the key with another body is 422
        ``IDEMPOTENCY_KEY_REUSED``. Send one whenever a resume may be retried.
        A run paused on an approval request (``approval.requested``) needs ``approval``:
        approve runs the call (with edited ``arguments`` if given), reject gives the model
        ``message`` as the call's result. 409 "Run is not paused"; 409
        ``APPROVAL_NOT_PENDING`` (no such pending request); 422 ``APPROVAL_REQUIRED`` or
        the tool's code and field for edited arguments its own rules refuse (e.g.
        ``PATCH_TOO_LARGE`` over ``RUNWRIGHT_MAX_PATCH_BYTES``,
        ``BUILDER_PATCH_POLICY_VIOLATION`` for a path or a command off the allowlist); 503
        when the run's actor could not answer in time (the resume may still apply: retry
        with the same key; a repeat of the decision the run already took answers 200 with
        the run too; a retried plain resume without a key may meet 409 "Run is not paused",
        or resume the run's next pause)."""
        ctx = await authz.run_access(app_id, run_id, WRITE)
        body = await parse_json(ResumeRequest)
        key = await idempotency.resume_key(f"{ctx.principal.kind}:{ctx.principal.subject}")
        approval = None if body.approval is None else body.approval.model_dump(exclude_none=True)
        row = await services.runs.resume(run_id, body.payload, approval, key)
        return services.runs.serialize(row)

    @bp.post("/<uuid:run_id>/cancel")
    @tag(["runs"])
    @document_response(RunResponse, 200)
    @document_errors(401, 403, 404, 422, 503)
    async def cancel_run(app_id: uuid.UUID, run_id: uuid.UUID) -> dict[str, Any]:
        """Cancel: answers once the engine has stopped. Terminal runs come back unchanged.
        An engine whose stop cannot be confirmed fails the run (contract 1.7). Any node
        accepts it: a run executing on another node is relayed there. 503 when the run's
        actor could not answer, or ``RUN_OWNER_UNRESPONSIVE`` (with ``Retry-After``) when
        the node executing it did not confirm within
        ``RUNWRIGHT_COMMAND_RELAY_TIMEOUT_SECONDS``: not cancelled, retry."""
        await authz.run_access(app_id, run_id, WRITE)
        return services.runs.serialize(await services.runs.cancel(run_id))

    return bp
