"""``GET /viewer``: the browser run viewer, plain HTML/JS/CSS shipped as package data
(``web/viewer/``; no build step).

The page itself holds no data and needs no auth: it asks the API with the bearer token the
user types in (kept in page memory) and opens streams with stream tickets
(:mod:`web.stream_tickets`). Its Content-Security-Policy allows only this origin's script,
style and connections and no inline script or style, so text a model wrote can never run
as code even if a renderer slipped (the page also inserts all event data as text).
"""

from __future__ import annotations

from importlib import resources

from quart import Blueprint, Response
from quart_schema import hide, tag

from web.errors import ApiError
from web.schemas.common import document_content

# For the page and its assets; the API's own responses are JSON and carry no script.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
ASSETS = {
    "viewer.js": "text/javascript; charset=utf-8",
    "viewer.css": "text/css; charset=utf-8",
}


def _load(name: str) -> bytes:
    return resources.files("web").joinpath("viewer", name).read_bytes()


def blueprint() -> Blueprint:
    """The viewer blueprint. Reads the three files once, when the app is built."""
    bp = Blueprint("viewer", __name__)
    page = _load("index.html")
    assets = {name: (_load(name), kind) for name, kind in ASSETS.items()}

    @bp.get("/viewer")
    @tag(["viewer"])
    @document_content(200, "text/html", "The viewer page.")
    async def viewer_page() -> Response:
        """The run viewer page (HTML): pick an app's run, watch it live, cancel it."""
        return Response(page, content_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    @bp.get("/viewer/<name>")
    @hide
    async def viewer_asset(name: str) -> Response:
        """The page's script and style sheet; any other name is 404."""
        if name not in assets:
            raise ApiError(404, "Not Found")
        body, kind = assets[name]
        return Response(body, content_type=kind, headers=SECURITY_HEADERS)

    return bp
