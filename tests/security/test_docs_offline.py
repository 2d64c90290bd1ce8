"""``/docs`` works offline (issue 13): the page references only same-origin assets, every
one of them is served by Runwright, and the page's CSP allows nothing else."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

from web.routes.docs import DOCS_CSP


class _Refs(HTMLParser):
    """Every ``src``/``href`` of the page and whether it holds inline script."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.inline_script = False
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href"):
            if values.get(name):
                self.refs.append(values[name] or "")
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_script = True


async def test_docs_page_uses_only_same_origin_assets_and_they_are_served(client):
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.headers["Content-Security-Policy"] == DOCS_CSP
    html = await page.get_data(as_text=True)
    parser = _Refs()
    parser.feed(html)
    assert not parser.inline_script
    assert len(parser.refs) >= 4  # stylesheet, icon, bundle, initialiser
    for ref in parser.refs:
        parts = urlsplit(ref)
        assert not parts.scheme and not parts.netloc, f"{ref} is not same-origin"
        asset = await client.get(ref)
        assert asset.status_code == 200, ref
        assert len(await asset.get_data()) > 0
    # The bundle is really Swagger UI, and the initialiser points it at our document
    # without the online validator.
    bundle_ref = next(r for r in parser.refs if r.endswith("swagger-ui-bundle.js"))
    bundle = await (await client.get(bundle_ref)).get_data(as_text=True)
    assert "SwaggerUIBundle" in bundle and len(bundle) > 500_000
    init_ref = next(r for r in parser.refs if r.endswith("swagger-init.js"))
    init = await (await client.get(init_ref)).get_data(as_text=True)
    assert "validatorUrl: null" in init
    assert re.search(r'data-openapi-url="/openapi.json"', html)


async def test_no_absolute_url_in_the_served_files(client):
    """Nothing on the page would fetch from another origin at load time."""
    html = await (await client.get("/docs")).get_data(as_text=True)
    assert "http://" not in html and "https://" not in html
    init = await (await client.get("/docs/assets/swagger-init.js")).get_data(as_text=True)
    assert "http" not in init
    css = await (await client.get("/docs/assets/swagger-ui.css")).get_data(as_text=True)
    assert not re.search(r"url\(\s*['\"]?https?:", css)


async def test_unknown_asset_is_404_and_cdn_pages_are_gone(client):
    for path in ("/docs/assets/LICENSE", "/docs/assets/..%2Fflask_swagger_ui.py",
                 "/docs/assets/oauth2-redirect.html", "/redocs", "/scalar"):  # fmt: skip
        response = await client.get(path)
        assert response.status_code == 404, path
        assert await response.get_json() == {"detail": "Not Found"}
