"""The OpenAPI document, made to tell the truth (issue 9 item 5).

quart-schema builds the document from the routes' decorators; this provider adds what the
decorators cannot say, the same way for every route (so routes added later are covered
without edits):

- path ids of the ``uuid`` converter are ``{"type": "string", "format": "uuid"}`` (a
  malformed one is still answered 422, see :mod:`web.validation`);
- non-JSON responses declared with :func:`web.schemas.common.document_content` (the event
  stream's ``text/event-stream``, HTML pages) get their media type;
- authentication: an operation that documents a 401 and no security scheme of its own runs
  the contract 9 chain, so it also answers 400 (bad ``X-Tenant-ID``) and 403, and takes the
  optional ``X-Tenant-ID`` header; an operation documenting no 401 is public and says so
  (``security: []``);
- every operation with path parameters can answer 404 and 422, every one with a query,
  header or body model 422, every one with a body 413 (over ``MAX_CONTENT_LENGTH``);
- every operation can answer 431 (request headers too large, :mod:`web.header_limits`,
  with the server's own bodiless 431 above its bound said in the description);
- every error response is :class:`web.schemas.common.ErrorResponse`;
- an operation that runs the contract 9 chain reads the database, so it can also answer
  503 ``DATABASE_UNAVAILABLE`` (:func:`web.errors.database_unavailable`);
- response headers (``components/headers``): a headers model given to
  ``document_response(model, status, headers_model)`` becomes that response's ``headers``
  (quart-schema 0.25 writes it into ``content`` as if it were a media type, where no
  OpenAPI reader finds it); every response has ``X-Request-ID``
  (:mod:`web.request_context`), every 429 and 503 ``Retry-After``, every 401
  ``WWW-Authenticate``.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel
from quart_schema.openapi import OpenAPIProvider
from werkzeug.routing import BaseConverter, Rule

from web.header_limits import MAX_HEAD_BYTES, SERVER_HEAD_BYTES
from web.request_context import REQUEST_ID_HEADER, REQUEST_ID_PATTERN
from web.schemas.common import CONTENT_ATTRIBUTE, ErrorResponse
from web.validation import UUIDConverter

TENANT_HEADER = {
    "name": "X-Tenant-ID",
    "in": "header",
    "required": False,
    "description": "The tenant to act in (contract 9); default: the user's first membership.",
    "schema": {"type": "string", "format": "uuid"},
}

_REASONS = {
    400: "Bad request (for authenticated routes also: invalid X-Tenant-ID header)",
    401: "Missing or invalid bearer token",
    403: "Missing scope, tenant or permission",
    404: "Not found (in this tenant)",
    409: "Conflict",
    413: "Request body too large",
    431: (
        f"Request line and headers over {MAX_HEAD_BYTES} bytes: the error shape, code "
        f"REQUEST_HEADERS_TOO_LARGE. Over {SERVER_HEAD_BYTES} bytes the HTTP server itself "
        "may answer 431 before the API sees the request (always over "
        f"{2 * SERVER_HEAD_BYTES}), with no body (Content-Length: 0, Connection: close)."
    ),
    422: "Validation error",
    429: "Too many requests",
    503: "Temporarily unavailable; retry",
}

_SECONDS = {"type": "string", "pattern": "^[0-9]+$"}
HEADERS: dict[str, dict[str, Any]] = {
    REQUEST_ID_HEADER: {
        "description": "The caller's X-Request-ID when it is 1-128 characters of "
        "A-Z a-z 0-9 . _ : - starting with a letter or digit, else a new id; also in the "
        "server's log lines for this request.",
        "required": True,
        "schema": {"type": "string", "pattern": f"^{REQUEST_ID_PATTERN}$"},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying (RFC 9110 10.2.3). Sent with 429 "
        "TENANT_QUEUE_FULL and TOO_MANY_STREAMS, 503 DATABASE_UNAVAILABLE, "
        "RUN_OWNER_UNRESPONSIVE and NOT_READY; absent when the server knows no delay.",
        "schema": _SECONDS,
    },
    "WWW-Authenticate": {
        "description": "The bearer challenge (RFC 6750) of a missing or invalid token.",
        "schema": {"type": "string"},
    },
}
"""The response headers of ``components/headers``, referenced by the responses."""

_HEADERS_BY_STATUS = {401: ("WWW-Authenticate",), 429: ("Retry-After",), 503: ("Retry-After",)}


def _header_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def response_headers(model: type[BaseModel]) -> dict[str, dict[str, Any]]:
    """OpenAPI header objects of a headers model: one per field, named by its alias, with
    its description and its schema without the ``null`` of an optional field."""
    schema = model.model_json_schema(by_alias=True)
    required = set(schema.get("required", []))
    headers = {}
    for name, prop in schema["properties"].items():
        variants = [v for v in prop.get("anyOf", [prop]) if v.get("type") != "null"]
        body = {k: v for k, v in variants[0].items() if k not in ("title", "default")}
        header: dict[str, Any] = {"schema": body}
        if prop.get("description"):
            header["description"] = prop["description"]
        if name in required:
            header["required"] = True
        headers[name] = header
    return headers


class RunwrightOpenAPI(OpenAPIProvider):
    """quart-schema's provider with the additions listed in the module docstring."""

    def build_path_parameter(self, name: str, converter: BaseConverter) -> dict[str, Any]:
        """UUID path ids are declared as such."""
        parameter = super().build_path_parameter(name, converter)
        if isinstance(converter, UUIDConverter):
            parameter["schema"] = {"type": "string", "format": "uuid"}
        return parameter

    def schema(self) -> dict[str, Any]:
        """The document, with the shared response headers in ``components/headers``."""
        document = super().schema()
        document["components"]["headers"] = copy.deepcopy(HEADERS)
        return document

    def build_response_object(
        self, model: Any, headers_model: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """quart-schema's response object; a headers model goes to ``headers``."""
        response, definitions = super().build_response_object(model, None)
        if headers_model is not None:
            response["headers"] = response_headers(headers_model)
        return response, definitions

    def build_paths(self, rule: Rule) -> tuple[dict, dict]:
        """The path objects of ``rule`` with the documented extra responses."""
        paths, components = super().build_paths(rule)
        func = self._app.view_functions[rule.endpoint]
        content = getattr(func, CONTENT_ATTRIBUTE, {})
        error_ref = None
        for operations in paths.values():
            for method, operation in list(operations.items()):
                operation = {**operation, "responses": dict(operation["responses"])}
                operation["parameters"] = list(operation["parameters"])
                operations[method] = operation
                for status, (media_type, description, model) in content.items():
                    schema: dict[str, Any] = {"type": "string"}
                    if model is not None:
                        built, definitions = self.build_response_object(model, None)
                        schema = built["content"]["application/json"]["schema"]
                        components.update(definitions)
                    operation["responses"][status] = {
                        "description": description,
                        "content": {media_type: {"schema": schema}},
                    }
                error_ref = error_ref or self._error_schema(components)
                self._complete_responses(operation, rule, method, error_ref)
        return paths, components

    def _error_schema(self, components: dict[str, Any]) -> dict[str, Any]:
        """The ErrorResponse schema (its definitions go to ``components``)."""
        response, definitions = self.build_response_object(ErrorResponse, None)
        components.update(definitions)
        return response["content"]["application/json"]["schema"]

    @staticmethod
    def _complete_responses(
        operation: dict[str, Any], rule: Rule, method: str, error_schema: dict[str, Any]
    ) -> None:
        responses = operation["responses"]
        parameters = operation["parameters"]
        statuses: set[int] = set()
        if 401 in responses and "security" in operation:
            pass  # its own scheme (e.g. /metrics' token), not the tenant chain
        elif 401 in responses:
            statuses |= {400, 403, 503}
            if not any(p.get("in") == "header" and p["name"].lower() == "x-tenant-id"
                       for p in parameters):  # fmt: skip
                parameters.append(dict(TENANT_HEADER))
        else:
            operation["security"] = []
        if rule.arguments:
            statuses |= {404, 422}
        if any(p.get("in") in ("query", "header") and p["name"] != TENANT_HEADER["name"]
               for p in parameters):  # fmt: skip
            statuses.add(422)
        if "requestBody" in operation:
            statuses |= {413, 422}
        statuses.add(431)  # any request may carry too much head (web/header_limits.py)
        for status in sorted(statuses):
            if status not in responses:
                responses[status] = {
                    "description": _REASONS.get(status, ""),
                    "content": {"application/json": {"schema": error_schema}},
                }
        for status, response in list(responses.items()):
            headers = dict(response.get("headers", {}))
            for name in (REQUEST_ID_HEADER, *_HEADERS_BY_STATUS.get(int(status), ())):
                headers.setdefault(name, _header_ref(name))
            responses[status] = {**response, "headers": headers}
        if not parameters:
            del operation["parameters"]
