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
- every error response is :class:`web.schemas.common.ErrorResponse`.
"""

from __future__ import annotations

from typing import Any

from quart_schema.openapi import OpenAPIProvider
from werkzeug.routing import BaseConverter, Rule

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
    422: "Validation error",
    429: "Too many requests",
    503: "Temporarily unavailable; retry",
}


class RunwrightOpenAPI(OpenAPIProvider):
    """quart-schema's provider with the additions listed in the module docstring."""

    def build_path_parameter(self, name: str, converter: BaseConverter) -> dict[str, Any]:
        """UUID path ids are declared as such."""
        parameter = super().build_path_parameter(name, converter)
        if isinstance(converter, UUIDConverter):
            parameter["schema"] = {"type": "string", "format": "uuid"}
        return parameter

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
                self._complete_errors(operation, rule, method, error_ref)
        return paths, components

    def _error_schema(self, components: dict[str, Any]) -> dict[str, Any]:
        """The ErrorResponse schema (its definitions go to ``components``)."""
        response, definitions = self.build_response_object(ErrorResponse, None)
        components.update(definitions)
        return response["content"]["application/json"]["schema"]

    @staticmethod
    def _complete_errors(
        operation: dict[str, Any], rule: Rule, method: str, error_schema: dict[str, Any]
    ) -> None:
        responses = operation["responses"]
        parameters = operation["parameters"]
        statuses: set[int] = set()
        if 401 in responses and "security" in operation:
            pass  # its own scheme (e.g. /metrics' token), not the tenant chain
        elif 401 in responses:
            statuses |= {400, 403}
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
        for status in sorted(statuses):
            if status not in responses:
                responses[status] = {
                    "description": _REASONS.get(status, ""),
                    "content": {"application/json": {"schema": error_schema}},
                }
        if not parameters:
            del operation["parameters"]
