"""The browser run viewer (``/viewer``) in real headless Chromium (Debian's ``chromium``,
driven by Playwright) against a real ``runwright serve`` process: a run watched live to its
end (its screenshot is docs/viewer.png, rewritten when RUNWRIGHT_UPDATE_SCREENSHOTS=1), a
reconnect after the server process dies and comes back (no event lost or shown twice), the
same after the stream ticket expired (the page gets a new one and resumes after its last
seq), and cancel from the page."""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import (
    BrowserContext,
    Page,
    Request,
    Response,
    async_playwright,
    expect,
)

from runtime.processes import free_port
from runwright.client import AsyncClient
from storage import models as models_store
from storage.database import Database
from storage.models import BindingSpec
from tests.support.fixtures_openai import scripted_openai  # noqa: F401
from tests.support.live_server import kill, server_process
from tests.support.openai_script import Reply
from tests.support.scripted_openai import (
    ScriptedOpenAI,
    ScriptedToolCall,
    text_reply,
    tool_call_reply,
)
from tests.support.seed import Seeded, Seeder

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SECRET = "viewer-secret-0123456789abcdef-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "viewer.png"
# The committed screenshot is refreshed only on request, so a test run leaves the tree clean.
UPDATE_SCREENSHOT = os.environ.get("RUNWRIGHT_UPDATE_SCREENSHOTS") == "1"
BUDGET_MS = 60_000  # generous: the machine may be busy
PATCH = """\
--- a/src/App.tsx
+++ b/src/App.tsx
@@ -33,3 +33,3 @@
       <header className="chat__header">
-        <h1>Chat</h1>
+        <h1>Runwright Chat</h1>
       </header>
"""


@dataclass
class Stack:
    base_url: str
    port: int
    env: dict[str, str]
    owner: Seeded
    proc: Any

    @property
    def token(self) -> str:
        return self.owner.headers["Authorization"].removeprefix("Bearer ")

    def client(self) -> AsyncClient:
        return AsyncClient(self.base_url, self.token, tenant_id=self.owner.tenant_id)


@pytest.fixture
async def stack(database_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "RUNWRIGHT_DATA_DIR": str(tmp_path / "data"),
        "RUNWRIGHT_JWT_SECRET": SECRET,
        "RUNWRIGHT_SCRIPTED_ENGINE_ENABLED": "1",
        "RUNWRIGHT_LOCAL_MODEL_AUTOSTART": "0",
    }
    db = await Database.connect(database_url, min_size=1, max_size=2)
    try:
        owner = await Seeder(db, SECRET).tenant_admin()
    finally:
        await db.close()
    port = free_port()
    async with server_process(env, port) as proc:
        yield Stack(f"http://127.0.0.1:{port}", port, env, owner, proc)


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[BrowserContext]:
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh user-data-dir
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )  # fmt: skip
        try:
            yield context
        finally:
            await context.close()


async def _new_app(stack: Stack) -> str:
    async with stack.client() as rw:
        app = await rw.create_app("Viewer test", f"viewer-{os.urandom(4).hex()}")
    return str(app.id)


async def _open_run(context: BrowserContext, stack: Stack, app_id: str, run_id: str) -> Page:
    """Load the viewer, sign in with the token (typed, as a user would) and pick the run."""
    page = await context.new_page()
    await page.goto(f"{stack.base_url}/viewer#app={app_id}&tenant={stack.owner.tenant_id}")
    await page.fill("#token", stack.token)
    await page.click("#load-runs")
    await page.click(f"#runs li[data-run-id='{run_id}']", timeout=BUDGET_MS)
    await expect(page.locator("#run-id")).to_have_text(run_id)
    return page


async def _page_seqs(page: Page) -> list[int]:
    return [int(s) for s in await page.locator("#events li").evaluate_all(
        "items => items.map(i => i.dataset.seq)")]  # fmt: skip


async def _stored_seqs(stack: Stack, app_id: str, run_id: str) -> list[int]:
    async with stack.client() as rw:
        return [e.seq async for e in rw.stream(app_id, run_id)]


async def _operator_model(stack: Stack, base_url: str) -> None:
    """The default model: the scripted server, as an operator's model (may be loopback)."""
    db = await Database.connect(stack.env["DATABASE_URL"], min_size=1, max_size=1)
    try:
        await models_store.create_model(
            db, tenant_id=None, name="scripted", is_default=True,
            bindings=[BindingSpec(provider="openai", provider_model_id="scripted-model",
                                  base_url=base_url)],
        )  # fmt: skip
    finally:
        await db.close()


def _gated(gate: threading.Event, reply: Reply) -> Any:
    """A reply the model server holds until ``gate`` is set (bounded), so the test knows
    the page is watching before the run gets anywhere."""

    def respond(_body: dict[str, Any]) -> Reply:
        gate.wait(BUDGET_MS / 1000)
        return reply

    return respond


async def test_a_run_watched_live_to_its_end(
    stack: Stack,
    browser: BrowserContext,
    scripted_openai: ScriptedOpenAI,  # noqa: F811
    tmp_path: Path,
):
    await _operator_model(stack, scripted_openai.base_url)
    gate = threading.Event()
    read = ScriptedToolCall("coding_agent_read_file_range",
                            {"path": "src/App.tsx", "start_line": 30, "end_line": 40})  # fmt: skip
    scripted_openai.push(
        _gated(gate, tool_call_reply(read)),
        tool_call_reply(ScriptedToolCall("coding_agent_apply_patch", {"patch": PATCH})),
        text_reply("I renamed the heading to Runwright Chat.", chunk_size=3, delay=0.02),
    )
    app_id = await _new_app(stack)
    async with stack.client() as rw:
        run = await rw.create_run(app_id, "Rename the heading to Runwright Chat")
    run_id = str(run.run_id)
    try:
        page = await _open_run(browser, stack, app_id, run_id)
        await expect(page.locator("#connection")).to_have_text("live", timeout=BUDGET_MS)
        await expect(page.locator("#run-status")).not_to_have_text(re.compile("completed|failed"))
    finally:
        gate.set()  # the run goes on only now, while the page watches
    await expect(page.locator(".final")).to_contain_text("Status: completed", timeout=BUDGET_MS)
    await expect(page.locator("#run-status")).to_have_text("completed")
    await expect(page.locator(".assistant .text").last).to_have_text(
        "I renamed the heading to Runwright Chat.")  # fmt: skip
    added = page.locator(".diff .add")
    await expect(added).to_have_text(["+        <h1>Runwright Chat</h1>"])
    await expect(page.locator(".diff .del")).to_have_text(["-        <h1>Chat</h1>"])
    await expect(page.locator(".tool .state.ok")).to_have_count(2)
    await expect(page.locator(".milestone", has_text="Revision ")).to_have_count(1)
    await expect(page.locator(".milestone", has_text="Checkpoint ")).to_have_count(1)
    seqs = await _page_seqs(page)
    assert seqs == list(range(1, len(seqs) + 1)) == await _stored_seqs(stack, app_id, run_id)
    assert await page.evaluate("() => localStorage.length + sessionStorage.length") == 0
    assert stack.token not in page.url
    shot = SCREENSHOT if UPDATE_SCREENSHOT else tmp_path / "viewer.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one


async def test_an_edit_file_call_shows_the_diff_it_applied(
    stack: Stack,
    browser: BrowserContext,
    scripted_openai: ScriptedOpenAI,  # noqa: F811
):
    await _operator_model(stack, scripted_openai.base_url)
    edit = {"path": "src/App.tsx", "old_text": "<h1>Chat</h1>",
            "new_text": "<h1>Runwright Chat</h1>"}  # fmt: skip
    scripted_openai.push(
        tool_call_reply(ScriptedToolCall("coding_agent_edit_file", edit)),
        text_reply("Renamed the heading."),
    )
    app_id = await _new_app(stack)
    async with stack.client() as rw:
        run = await rw.create_run(app_id, "Rename the heading", tools=["edit_file"])
    page = await _open_run(browser, stack, app_id, str(run.run_id))
    await expect(page.locator(".final")).to_contain_text("Status: completed", timeout=BUDGET_MS)
    tool = page.locator(".tool", has_text="coding_agent_edit_file")
    await expect(tool.locator(".diff .add")).to_have_text(["+        <h1>Runwright Chat</h1>"])
    await expect(tool.locator(".diff .del")).to_have_text(["-        <h1>Chat</h1>"])


async def test_the_page_reconnects_after_the_server_dies_without_loss_or_repeat(
    stack: Stack, browser: BrowserContext
):
    app_id = await _new_app(stack)
    script = [{"delta": "Working on it. "},
              {"tool": "read_file", "input": {"path": "src/App.tsx"}, "output": {"ok": True}},
              {"hang": True}]  # fmt: skip
    async with stack.client() as rw:
        run = await rw.create_run(app_id, "go", engine="scripted", script=script)
    run_id = str(run.run_id)
    page = await _open_run(browser, stack, app_id, run_id)
    streams: list[Request] = []
    page.on("request", lambda r: streams.append(r) if "/stream?" in r.url else None)
    await expect(page.locator(".tool .state.ok")).to_have_count(1, timeout=BUDGET_MS)
    before = await _page_seqs(page)

    await kill(stack.proc)  # the server drops every connection; the run is left running
    await expect(page.locator("#connection")).to_contain_text("reconnecting", timeout=BUDGET_MS)
    async with server_process(stack.env, stack.port):  # same port, same database
        # At start-up the new process settles the dead one's run (fail-closed), adding
        # run.failed while the page is disconnected; the page must fetch just that.
        await expect(page.locator(".final")).to_contain_text("Status: failed", timeout=BUDGET_MS)
        seqs = await _page_seqs(page)
        assert seqs[: len(before)] == before
        assert seqs == list(range(1, len(seqs) + 1)) == await _stored_seqs(stack, app_id, run_id)
        await expect(page.locator("#events li[data-event='run.failed']")).to_have_count(1)
        await expect(page.locator(".final")).to_contain_text("RUN_INTERRUPTED")
        resumed = [(await r.all_headers()).get("last-event-id") for r in streams]
        assert str(before[-1]) in resumed, resumed  # resumed after the last event shown


async def test_an_expired_ticket_is_renewed_and_the_stream_resumes_after_the_last_seq(
    stack: Stack, browser: BrowserContext
):
    env = {**stack.env, "RUNWRIGHT_STREAM_TICKET_TTL_SECONDS": "10"}  # the shortest allowed
    await kill(stack.proc)
    async with server_process(env, stack.port) as proc:
        app_id = await _new_app(stack)
        script = [{"delta": "Working. "}, {"hang": True}]
        async with stack.client() as rw:
            run = await rw.create_run(app_id, "go", engine="scripted", script=script)
        run_id = str(run.run_id)
        tickets: list[Response] = []
        streams: list[str] = []
        page = await stack_page(browser, stack, app_id, run_id, tickets, streams)
        await expect(page.locator(".assistant .text")).to_have_text("Working. ", timeout=BUDGET_MS)
        before = await _page_seqs(page)
        expires = datetime.fromisoformat((await tickets[0].json())["expires_at"]).timestamp()
        await kill(proc)
    # The server stays down until the page's ticket has expired, so EventSource's own
    # reconnect is refused (401) and the page must ask for a new ticket.
    await asyncio.sleep(max(0.0, expires + 1 - time.time()))  # the condition is the clock
    async with server_process(env, stack.port):
        await expect(page.locator(".final")).to_contain_text("Status: failed", timeout=BUDGET_MS)
        seqs = await _page_seqs(page)
        assert seqs[: len(before)] == before
        assert seqs == list(range(1, len(seqs) + 1)) == await _stored_seqs(stack, app_id, run_id)
        assert len(tickets) >= 2
        assert any(f"&after={before[-1]}" in url for url in streams), streams


async def stack_page(
    browser: BrowserContext,
    stack: Stack,
    app_id: str,
    run_id: str,
    tickets: list[Response],
    streams: list[str],
) -> Page:
    """:func:`_open_run`, recording the ticket answers and the stream URLs opened."""

    def note(response: Response) -> None:
        if response.url.endswith("/stream-ticket") and response.ok:
            tickets.append(response)

    browser.on("response", note)
    browser.on("request", lambda r: streams.append(r.url) if "/stream?" in r.url else None)
    return await _open_run(browser, stack, app_id, run_id)


async def test_cancel_from_the_page(stack: Stack, browser: BrowserContext):
    app_id = await _new_app(stack)
    async with stack.client() as rw:
        run = await rw.create_run(app_id, "go", engine="scripted",
                                  script=[{"delta": "Waiting. "}, {"hang": True}])  # fmt: skip
    run_id = str(run.run_id)
    page = await _open_run(browser, stack, app_id, run_id)
    await expect(page.locator(".assistant .text")).to_have_text("Waiting. ", timeout=BUDGET_MS)
    await expect(page.locator("#cancel")).to_be_enabled()
    await page.click("#cancel")
    await expect(page.locator("#run-status")).to_have_text("cancelled", timeout=BUDGET_MS)
    await expect(page.locator("#cancel")).to_be_disabled()
    await expect(page.locator("#connection")).to_have_text("ended", timeout=BUDGET_MS)
    async with stack.client() as rw:
        assert (await rw.get_run(app_id, run_id)).status == "cancelled"
    await expect(page.locator(f"#runs li[data-run-id='{run_id}'] .status")).to_have_text(
        "cancelled")  # fmt: skip


async def test_approve_and_reject_from_the_page(
    stack: Stack,
    browser: BrowserContext,
    scripted_openai: ScriptedOpenAI,  # noqa: F811
):
    """A run paused on an approval request shows the call and its buttons; Approve resumes
    it and the page follows it to its end; Reject sends the reason typed on the page."""
    await _operator_model(stack, scripted_openai.base_url)
    patch = tool_call_reply(ScriptedToolCall("coding_agent_apply_patch", {"patch": PATCH}))
    scripted_openai.push(patch, text_reply("Renamed after your approval."))
    app_id = await _new_app(stack)
    async with stack.client() as rw:
        run = await rw.create_run(app_id, "Rename", approval_policy="patches")
    run_id = str(run.run_id)
    page = await _open_run(browser, stack, app_id, run_id)
    await expect(page.locator("#run-status")).to_have_text("paused", timeout=BUDGET_MS)
    await expect(page.locator(".approval .diff .add")).to_have_text(
        ["+        <h1>Runwright Chat</h1>"])  # fmt: skip
    await expect(page.locator("#actions")).to_be_visible()
    await page.click("#approve")
    await expect(page.locator(".final").last).to_contain_text(
        "Status: completed", timeout=BUDGET_MS)  # fmt: skip
    await expect(page.locator("#run-status")).to_have_text("completed")
    await expect(page.locator("#actions")).to_be_hidden()
    await expect(page.locator(".assistant .text").last).to_have_text(
        "Renamed after your approval.")  # fmt: skip
    seqs = await _page_seqs(page)
    async with stack.client() as rw:  # the pause's stream, then the resumed run's
        stored = [e.seq async for e in rw.stream(app_id, run_id)]
        stored += [e.seq async for e in rw.stream(app_id, run_id, after=stored[-1])]
    assert seqs == list(range(1, len(seqs) + 1)) == stored

    scripted_openai.push(patch, text_reply("Left it."))
    async with stack.client() as rw:
        run = await rw.create_run(app_id, "Rename again", approval_policy="patches")
    run_id = str(run.run_id)
    await page.click("#refresh-runs")
    await page.click(f"#runs li[data-run-id='{run_id}']", timeout=BUDGET_MS)
    await expect(page.locator("#run-status")).to_have_text("paused", timeout=BUDGET_MS)
    await page.fill("#approval-message", "Not today")
    await page.click("#reject")
    await expect(page.locator("#run-status")).to_have_text("completed", timeout=BUDGET_MS)
    await expect(page.locator(".tool .state.failed")).to_have_count(1)
    assert "Not today" in str(scripted_openai.bodies[-1]["messages"][-1])
