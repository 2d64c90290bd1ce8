"""Standard security headers on every response (issue 9 item 5).

Set in one ``after_request`` hook, so routes, error handlers, streams and the docs all get
them. A response that sets its own value (the docs page's CSP) keeps it.

- ``X-Content-Type-Options: nosniff``: browsers never reinterpret a JSON body as HTML/JS.
- ``Content-Security-Policy`` :data:`API_CSP`: an API response may load nothing, run
  nothing and be framed by nobody; ``X-Frame-Options: DENY`` says the same to old browsers.
- ``Referrer-Policy: no-referrer``; ``Cross-Origin-Opener-Policy`` and
  ``Cross-Origin-Resource-Policy: same-origin``: no other site embeds or reads responses.
- ``Cache-Control: no-store`` on authenticated API responses (``/admin/...``, or any request
  carrying ``Authorization``): tenant data is never kept by a browser or shared cache. The
  event stream keeps its ``no-cache`` (contract 1.5) and gains ``no-store``.

No ``Strict-Transport-Security``: Runwright speaks plain HTTP behind the operator's TLS
proxy, which is where HSTS belongs (docs/security.md). The ``Server`` header is switched
off in Hypercorn's config (web/server.py).
"""

from __future__ import annotations

from quart import Quart, Response, request

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Content-Security-Policy": API_CSP,
}

NO_STORE = "no-store"


def _is_authenticated_api() -> bool:
    return request.path.startswith("/admin/") or "Authorization" in request.headers


async def _add_headers(response: Response) -> Response:
    # One pass over the response's headers instead of a lookup per name (werkzeug's
    # setdefault scans the list and raises a KeyError per missing header: 6 per response,
    # measurable in the issue 10 throughput profile).
    present = {key.lower() for key in response.headers.keys()}
    for name, value in HEADERS.items():
        if name.lower() not in present:
            response.headers.add(name, value)
    if _is_authenticated_api():
        current = response.headers.get("Cache-Control")
        if current is None:
            response.headers["Cache-Control"] = NO_STORE
        elif NO_STORE not in current.lower():
            response.headers["Cache-Control"] = f"{current}, {NO_STORE}"
    return response


def install_security_headers(app: Quart) -> None:
    """Register the hook on ``app``; call once from ``create_app``."""
    app.after_request(_add_headers)
