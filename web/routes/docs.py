"""``/docs``: Swagger UI for ``/openapi.json``, served entirely by Runwright (issue 13).

quart-schema's own page loads Swagger UI from a CDN and initialises it with an inline
script, so it is blank offline and needs ``'unsafe-inline'`` scripts. This page takes the
files from the ``flask-swagger-ui`` package (swagger-ui-dist, see its ``VERSION``) and its
small initialiser from :data:`INIT_SCRIPT`, all same-origin, so the strict
:data:`DOCS_CSP` applies.
"""

from __future__ import annotations

import asyncio
import functools
from importlib import resources

from quart import Blueprint, Response, url_for
from quart_schema import hide

from web.errors import ApiError

ASSETS_PACKAGE = "flask_swagger_ui"
# The files the page uses, with their media types; nothing else of the package is served.
ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
INIT_NAME = "swagger-init.js"

# Swagger UI sets inline style attributes (hence 'unsafe-inline' for styles only) and uses
# data: images in its CSS; everything else is same-origin; no framing.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} - API documentation</title>
  <link rel="stylesheet" href="{css}">
  <link rel="icon" type="image/png" href="{icon}">
</head>
<body>
  <div id="swagger-ui" data-openapi-url="{openapi}"></div>
  <script src="{bundle}"></script>
  <script src="{init}"></script>
</body>
</html>
"""

# validatorUrl null: Swagger UI would otherwise send the document to an online validator.
INIT_SCRIPT = """"use strict";
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    persistAuthorization: false,
  });
});
"""

_ASSET_CACHE = "public, max-age=86400"


def blueprint(title: str) -> Blueprint:
    """The ``/docs`` page and its assets (hidden from the OpenAPI document)."""
    bp = Blueprint("docs", __name__)

    @bp.get("/docs")
    @hide
    async def docs_page() -> Response:
        html = PAGE.format(
            title=title,
            css=url_for("docs.asset", name="swagger-ui.css"),
            icon=url_for("docs.asset", name="favicon-32x32.png"),
            bundle=url_for("docs.asset", name="swagger-ui-bundle.js"),
            init=url_for("docs.asset", name=INIT_NAME),
            openapi=url_for("openapi"),
        )
        response = Response(html, content_type="text/html; charset=utf-8")
        response.headers["Content-Security-Policy"] = DOCS_CSP
        return response

    @bp.get("/docs/assets/<name>")
    @hide
    async def asset(name: str) -> Response:
        if name == INIT_NAME:
            body: bytes = INIT_SCRIPT.encode()
            media_type = "text/javascript; charset=utf-8"
        elif name in ASSETS:
            body = await asyncio.to_thread(_read_asset, name)
            media_type = ASSETS[name]
        else:
            raise ApiError(404, "Not Found")
        response = Response(body, content_type=media_type)
        response.headers["Cache-Control"] = _ASSET_CACHE
        return response

    return bp


@functools.cache
def _read_asset(name: str) -> bytes:
    """One of :data:`ASSETS` from the installed package, read once (about 2 MB in all)."""
    return resources.files(ASSETS_PACKAGE).joinpath("dist", name).read_bytes()
