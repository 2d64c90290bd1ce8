"""``runwright demo``: the main job end to end, on this machine, through the real HTTP API
(with :mod:`runwright.client`).

Starts the service in-process (embedded Postgres unless ``DATABASE_URL`` is set, the local
model when no model is registered, Hypercorn on a free loopback port), creates a tenant,
a user and a ``chat-classic`` app, starts a native run with a real prompt (offering the
run :data:`DEMO_TOOLS` unless ``--all-tools``), prints its events as they stream, and ends
with the run's status, its revision and the diff of the changed files. Every step that can
fail says what to do.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from typing import Any, TextIO

import httpx

from runtime.local_model import INSTALL_HINT
from runtime.patching import make_unified_diff
from runtime.processes import free_port
from runtime.settings import Settings
from runtime.tools.edit import ALREADY_APPLIED
from runwright.client import AsyncClient, RunwrightError
from storage import tenancy
from web.app import create_app
from web.server import hypercorn_config
from web.services import build_services
from web.tokens import mint_token

# The demo's job is one real edit by a 0.5B model on two CPU cores (docs/local-model.md):
# the prompt names the file and the exact change, and the run offers two tools, so the
# model reads about 730 prompt tokens instead of 2,400 and fills edit_file's three
# fields instead of writing a diff. The call, the edit and the revision are still the
# model's, made through the API, the native engine and the toolpack like any other run's.
DEFAULT_PROMPT = (
    "In src/App.tsx, change the page heading `<h1>Chat</h1>` to `<h1>Runwright Chat</h1>`, "
    "then say what you changed."
)
DEMO_TOOLS = ("read_file_range", "edit_file")
STARTUP_TIMEOUT = 180.0
# A small local model answers slowly on 2 cores; keep each demo reply short (an edit_file
# call is about 45 tokens) unless the operator chose a cap
# (RUNWRIGHT_MODEL_MAX_OUTPUT_TOKENS).
DEMO_MAX_OUTPUT_TOKENS = 128
# The demo's job takes one tool round; a few more leave room for a read or a retry and
# keep a run that goes astray short (RUNWRIGHT_MAX_TOOL_ITERATIONS overrides).
DEMO_MAX_TOOL_ITERATIONS = 4
WAIT_REPORT_AFTER = 2.0  # seconds of model silence before the "waiting" line appears
WAIT_REPORT_EVERY = 15.0  # its repeat interval when the output is not a terminal


class DemoError(Exception):
    """A demo step failed; the message says what went wrong and what to do."""


class Printer:
    """Renders run events for a terminal: text as it is typed, one line per tool call, and a
    "waiting for the model" line with the elapsed time while a model turn has produced
    nothing yet (a small local model reads a long prompt for tens of seconds first)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.in_text = False
        self.count = 0
        self.started = time.monotonic()
        self.waiting_since: float | None = None
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self._status_shown = False
        self._last_report = 0.0

    def say(self, line: str) -> None:
        self.clear_status()
        self.break_text()
        print(line, file=self.out, flush=True)

    def clear_status(self) -> None:
        if self._status_shown and self.tty:
            print("\r" + " " * 72 + "\r", end="", file=self.out, flush=True)
        self._status_shown = False

    def tick(self) -> None:
        """Called about once a second: report how long the model has been silent."""
        if self.waiting_since is None:
            return
        waited = time.monotonic() - self.waiting_since
        if waited < WAIT_REPORT_AFTER:
            return
        line = f"  ... waiting for the model ({waited:.0f} s; it reads the prompt first)"
        if self.tty:
            self.break_text()
            print("\r" + line, end="", file=self.out, flush=True)
            self._status_shown = True
        elif waited - self._last_report >= WAIT_REPORT_EVERY or not self._last_report:
            self.break_text()
            print(line, file=self.out, flush=True)
            self._last_report = waited

    def break_text(self) -> None:
        if self.in_text:
            print(file=self.out)
            self.in_text = False

    def event(self, envelope: dict[str, Any]) -> None:
        self.count += 1
        kind, payload = envelope["event"], envelope["payload"]
        self.clear_status()
        # A model turn starts at each `plan.updated` with state "running" (and after a tool
        # result); it is silent until its first token or tool call.
        if kind == "plan.updated" and payload.get("state") == "running":
            self.waiting_since, self._last_report = time.monotonic(), 0.0
        elif kind in ("assistant.delta", "tool.started", "run.completed", "run.failed"):
            self.waiting_since = None
        if kind == "assistant.delta":
            if not self.in_text:
                print("  assistant: ", end="", file=self.out)
                self.in_text = True
            print(payload.get("content", ""), end="", file=self.out, flush=True)
        elif kind == "tool.started":
            self.say(f"  -> {payload['tool']} {json.dumps(payload.get('input'))[:160]}")
        elif kind == "tool.completed":
            self.say(f"  <- {payload['tool']} ok{_outcome(payload.get('output'))}")
        elif kind == "tool.failed":
            message = (envelope.get("diagnostics") or [{}])[0].get("message", "")
            self.say(f"  <- {payload['tool']} failed: {message}")
        elif kind == "plan.updated" and "summary" in payload:
            self.say(f"  [plan] {payload['summary']}")
        elif kind in ("revision.created", "checkpoint.created"):
            self.say(f"  [{kind}] {payload}")
        elif kind in ("run.completed", "run.failed"):
            elapsed = time.monotonic() - self.started
            self.say(f"  [{kind}] status={payload.get('status')} "
                     f"({self.count} events, {elapsed:.1f} s)")  # fmt: skip


def _outcome(output: Any) -> str:
    """What a successful tool call changed, for its line: `` (changed src/App.tsx)``."""
    if not isinstance(output, dict):
        return ""
    if output.get("applied_files"):
        return f" (changed {', '.join(output['applied_files'])})"
    if output.get("code") == ALREADY_APPLIED:
        return " (already done: nothing changed)"
    return ""


async def run_demo(
    settings: Settings,
    prompt: str,
    out: TextIO = sys.stdout,
    *,
    tools: tuple[str, ...] | None = DEMO_TOOLS,
) -> dict[str, Any]:
    """Run the demo; returns the final run object. ``tools``: the toolpack tools the run
    offers (the create field ``tools``), None for all.

    Raises:
        DemoError: a step failed (the message says what to do).
    """
    caps = {"model_max_output_tokens": DEMO_MAX_OUTPUT_TOKENS,
            "max_tool_iterations": DEMO_MAX_TOOL_ITERATIONS}  # fmt: skip
    update = {key: value for key, value in caps.items() if key not in settings.model_fields_set}
    settings = settings.model_copy(update=update)
    services = build_services(settings)
    app = create_app(settings, services=services)
    port = free_port()
    from hypercorn.asyncio import serve

    # The same server settings as `runwright serve` (no Server header, one log path),
    # with a short grace: the demo's only run has ended when it stops.
    config = hypercorn_config(f"127.0.0.1:{port}", settings)
    config.graceful_timeout = 5.0
    stop = asyncio.Event()
    print(f"Starting Runwright on http://127.0.0.1:{port} "
          f"(data in {settings.data_dir}) ...", file=out, flush=True)  # fmt: skip
    server = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(30.0, read=None)) as http:
            await _wait_healthy(http, server)
            if services.default_model.problem and not services.default_model.server:
                raise DemoError(
                    f"{services.default_model.problem}\n  fix: {INSTALL_HINT}\n"
                    "  or register your own OpenAI-compatible endpoint: runwright model add "
                    "--global --name NAME --provider openai --provider-model-id ID "
                    "--base-url URL --api-key-env VAR --default"
                )
            token, tenant_id = await _seed(services)
            async with AsyncClient(base, token, tenant_id=tenant_id) as rw:
                return await _drive(rw, prompt, tools, Printer(out))
    finally:
        stop.set()
        try:
            await asyncio.wait_for(server, 60)
        except Exception as exc:  # noqa: BLE001 - reported, the demo result stands
            print(f"(server stopped with: {exc!r})", file=out)


async def _wait_healthy(http: httpx.AsyncClient, server: asyncio.Task[Any]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.done():
            exc = server.exception()
            raise DemoError(
                f"the server did not start: {exc!r}. Check RUNWRIGHT_DATA_DIR is writable, or "
                "set DATABASE_URL to a reachable Postgres."
            )
        try:
            if (await http.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.25)
    raise DemoError(f"the server was not ready (/readyz) within {STARTUP_TIMEOUT:g} s")


async def _seed(services: Any) -> tuple[str, uuid.UUID]:
    """A tenant with an owner; returns ``(token, tenant_id)``."""
    tag = uuid.uuid4().hex[:8]
    tenant = await tenancy.create_tenant(services.db, name=f"Demo {tag}", slug=f"demo-{tag}")
    user = await tenancy.create_user(services.db, email=f"demo-{tag}@runwright.local")
    await tenancy.add_membership(services.db, tenant_id=tenant.id, user_id=user.id,
                                 org_role="owner")  # fmt: skip
    token = mint_token(services.jwt_secret, subject=user.id, tenant_id=tenant.id,
                       org_role="owner")  # fmt: skip
    return token, tenant.id


async def _drive(
    rw: AsyncClient, prompt: str, tools: tuple[str, ...] | None, printer: Printer
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    try:
        app = await rw.create_app("Demo chat", f"demo-chat-{tag}")
        state = await rw.builder_state(app.id)
        base = state.current_draft_revision
        if base is None:
            raise DemoError(f"app {app.id} has no draft revision")
        printer.say(f"Created app {app.id} from the chat-classic template "
                    f"({len(base.files)} files).")  # fmt: skip
        run = await rw.create_run(app.id, prompt, base_revision_id=base.id,
                                  tools=list(tools) if tools else None)  # fmt: skip
        printer.say(f"Run {run.run_id} ({run.execution_engine}, model "
                    f"{run.resolved_model_id}) - prompt: {prompt}")  # fmt: skip
        offered = ", ".join(run.tools) if run.tools else "all toolpack tools"
        printer.say(f"Tools offered: {offered}")
        ticker = asyncio.create_task(_tick(printer))
        try:
            async for event in rw.stream(app.id, run.run_id):
                printer.event(event.model_dump(mode="json"))
        finally:
            ticker.cancel()
            printer.clear_status()
        final = await rw.get_run(app.id, run.run_id)
        printer.say(f"Status: {final.status}" + (f" - {final.error}" if final.error else ""))
        if final.result_revision_id:
            revision = await rw.get_revision(app.id, final.result_revision_id)
            printer.say(f"Revision: {revision.id} (build_seq {revision.build_seq})")
            _print_changes(printer, base.files, revision.files)
        else:
            printer.say("Revision: none - the agent changed no files, so no revision was created.")
    except RunwrightError as exc:
        raise DemoError(str(exc)) from exc
    return final.model_dump(mode="json")


async def _tick(printer: Printer) -> None:
    while True:
        await asyncio.sleep(1.0)
        printer.tick()


def _print_changes(printer: Printer, old: dict[str, str], new: dict[str, str]) -> None:
    changed = sorted(p for p in set(old) | set(new) if old.get(p) != new.get(p))
    printer.say(f"Changed files ({len(changed)}): " + (", ".join(changed) or "none"))
    for path in changed:
        printer.say(make_unified_diff(path, old.get(path), new.get(path)).rstrip("\n"))
