"""``/viewer`` serves the page and its two assets with the page's own security headers,
and nothing else under that path."""

from __future__ import annotations

from web.routes.viewer import CONTENT_SECURITY_POLICY


async def test_the_page_and_its_assets_carry_a_strict_csp(client):
    page = await client.get("/viewer")
    assert page.status_code == 200
    assert page.content_type.startswith("text/html")
    html = await page.get_data(as_text=True)
    assert '<script src="/viewer/viewer.js" defer></script>' in html
    assert "<script>" not in html and "style=" not in html  # nothing inline for CSP to allow
    for response in (page, await client.get("/viewer/viewer.js"),
                     await client.get("/viewer/viewer.css")):  # fmt: skip
        assert response.status_code == 200
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY


async def test_no_other_file_is_served(client):
    for name in ("index.html", "..%2Fapp.py", "viewer.py", "x.js"):
        response = await client.get(f"/viewer/{name}")
        assert response.status_code == 404, name
        assert (await response.get_json())["detail"] == "Not Found"
