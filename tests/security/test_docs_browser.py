"""``/docs`` renders in real headless Chromium with no request leaving the server's origin
and no Content-Security-Policy violation (issue 13: /docs works offline)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import async_playwright, expect

from tests.support.server import hypercorn_on_loopback

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip
BUDGET_MS = 60_000  # generous: the machine may be busy

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (.ci/run installs it)"
)


async def test_docs_render_offline_under_their_csp(settings, tmp_path: Path):
    async with hypercorn_on_loopback(settings) as (base, _):
        async with httpx.AsyncClient(base_url=base) as http:
            document = (await http.get("/openapi.json")).json()
        operations = sum(len(ops) for ops in document["paths"].values())
        origin = urlsplit(base).netloc
        requests: list[str] = []
        console: list[str] = []
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS
            )
            try:
                page = await context.new_page()
                page.on("request", lambda r: requests.append(r.url))
                page.on("console", lambda m: console.append(m.text))
                await page.goto(f"{base}/docs")
                blocks = page.locator(".opblock")
                await expect(blocks).to_have_count(operations, timeout=BUDGET_MS)
                await expect(page.locator(".info .title")).to_contain_text("Runwright")
            finally:
                await context.close()
    foreign = [u for u in requests if urlsplit(u).scheme != "data" and urlsplit(u).netloc != origin]
    assert not foreign, foreign
    assert any(u.endswith("/openapi.json") for u in requests)
    violations = [m for m in console if "Content Security Policy" in m or "Refused to" in m]
    assert not violations, violations
