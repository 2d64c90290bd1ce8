"""Reading request input into pydantic models, with FastAPI-style 422 errors.

Routes authorise first and parse the body second (``await parse_json(Model)``), so an
unauthenticated request gets 401 before its body is looked at, as in the reference where
auth dependencies fail before body validation. Path ids use the ``uuid`` converter installed
here: a non-UUID id is a 422 naming the parameter, never a 404 or 500.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError
from quart import Quart, request
from quart.wrappers import Request
from werkzeug.exceptions import RequestTimeout
from werkzeug.routing import BaseConverter

from web.errors import ApiError, validation_items

M = TypeVar("M", bound=BaseModel)


async def read_body() -> bytes:
    """The whole request body, as Quart's ``request.get_data()`` gives it (same limits:
    ``BODY_TIMEOUT``, ``MAX_CONTENT_LENGTH``), without its ``asyncio.wait_for``: that
    wraps the body in a task (two loop iterations) on every call, and a create reads the
    body twice (validation, then the ``Idempotency-Key`` fingerprint).

    Raises:
        werkzeug.exceptions.RequestTimeout: the body did not arrive within the timeout.
        werkzeug.exceptions.RequestEntityTooLarge: it is over ``MAX_CONTENT_LENGTH``.
    """
    try:
        async with asyncio.timeout(request.body_timeout):
            return await request.body
    except TimeoutError as exc:
        raise RequestTimeout() from exc


async def parse_json(model: type[M]) -> M:
    """Validate the request body (JSON, whatever the Content-Type) as ``model``.

    Raises:
        ApiError: 422 with ``[{"type", "loc": ["body", ...], "msg", "input"}]`` when the body
            is missing, not JSON, or does not match the model.
    """
    raw = await read_body()
    if not raw.strip():
        raise ApiError(
            422, [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
        )
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: absurdly deep nesting ([[[[...) is bad JSON for us, not a 500.
        _json_decode_failed(exc)
    bad = _unstorable_text(data, ["body"])
    if bad is not None:
        raise ApiError(422, [bad])
    return validate_as(model, data, location="body")


def _reject_constant(name: str) -> Any:
    """``NaN``/``Infinity`` are not JSON (RFC 8259) and Postgres ``jsonb`` refuses them."""
    raise ValueError(f"{name} is not valid JSON")


def _unstorable_text(value: Any, loc: list[Any]) -> dict[str, Any] | None:
    """The first string (key or value) Postgres cannot store as text/jsonb, as a 422 item:
    one containing NUL (``\\u0000``) or an unpaired UTF-16 surrogate. Iterative, so a
    deep document cannot exhaust the stack."""
    stack: list[tuple[Any, list[Any]]] = [(value, loc)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item or not _encodable(item):
                return {
                    "type": "string_unstorable",
                    "loc": where,
                    "msg": "String must not contain NUL characters or unpaired surrogates",
                    "input": None,
                }
        elif isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key or not _encodable(key):
                    return _unstorable_text(key, where)
                stack.append((child, [*where, key]))
        elif isinstance(item, list):
            stack.extend((child, [*where, i]) for i, child in enumerate(item))
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_query(model: type[M]) -> M:
    """Validate the query string as ``model`` (repeated keys become lists).

    Raises:
        ApiError: 422 with ``loc`` starting ``"query"``.
    """
    data: dict[str, Any] = {}
    for key in request.args:
        values = request.args.getlist(key)
        data[key] = values if len(values) > 1 else values[0]
    return validate_as(model, data, location="query")


def validate_as(model: type[M], data: Any, *, location: str) -> M:
    """Validate already-decoded ``data``; errors are 422 with ``loc`` under ``location``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, validation_items(exc, location=[location])) from None


def _json_decode_failed(exc: Exception) -> NoReturn:
    position = getattr(exc, "pos", 0)
    raise ApiError(
        422,
        [
            {
                "type": "json_invalid",
                "loc": ["body", position],
                "msg": "JSON decode error",
                "input": {},
            }
        ],
    ) from None


class _InvalidId(str):
    """A path segment that should have been a UUID; reported by :func:`_reject_bad_ids`."""


class UUIDConverter(BaseConverter):
    """``<uuid:name>`` that matches any segment, so a bad id is a 422 rather than a 404."""

    regex = r"[^/]+"

    def to_python(self, value: str) -> uuid.UUID | _InvalidId:
        try:
            return uuid.UUID(value)
        except ValueError:
            return _InvalidId(value)

    def to_url(self, value: Any) -> str:
        return str(value)


async def _reject_bad_ids() -> None:
    bad = [
        {
            "type": "uuid_parsing",
            "loc": ["path", name],
            "msg": "Input should be a valid UUID",
            "input": str(value),
        }
        for name, value in (request.view_args or {}).items()
        if isinstance(value, _InvalidId)
    ]
    if bad:
        raise ApiError(422, bad)


class JsonRequest(Request):
    """Quart request whose JSON decoding failures are 422 (for routes using quart-schema)."""

    def on_json_loading_failed(self, error: Exception | None) -> Any:
        _json_decode_failed(error or ValueError("no JSON body"))


def install_validation(app: Quart) -> None:
    """Install the ``uuid`` converter, the bad-id check and the request class on ``app``."""
    app.url_map.converters["uuid"] = UUIDConverter
    app.request_class = JsonRequest
    app.before_request(_reject_bad_ids)
