"""One run on OpenCode: session, prompt, event stream, settlement, cancel (docs/design.md 3.5, 5).

Flow of :meth:`OpenCodeSession.events`:

1. make the directory's instance know the run's model (generated provider config);
2. ``POST /session`` (title, permission ruleset) -> yield :class:`EngineRef` at once;
3. open ``GET /event`` and wait for its first frame, *then* ``prompt_async``;
4. translate the session's frames (:mod:`.translate`) until ``session.idle``, then settle
   the result from ``GET /session/{id}/message``.

Failure rules: ``session.error`` fails the run; an upstream OpenCode keeps retrying past
``opencode_upstream_deadline_seconds`` is aborted and fails (``OPENCODE_UPSTREAM_UNREACHABLE``);
a dropped or silent stream is reopened and the session reconciled from its status and
messages, up to ``opencode_reconnect_attempts`` times, then fails (``OPENCODE_SERVER_LOST``);
a failed OpenCode call fails the run with the error text (``OPENCODE_REQUEST_FAILED``).
Permission requests are answered by :mod:`.policy` at once, questions rejected; except that
a request the policy would allow and the run's approval policy marks (``edit`` under
``patches``, ``bash`` under ``commands``, any under ``all``; :mod:`runtime.approvals`) ends
the session with :class:`Paused` instead: the OpenCode session keeps waiting for the reply,
and the resumed run reattaches to it (``engine_run_ref``), sends the person's decision as the
permission reply and goes on streaming. The pause survives only while that OpenCode server
lives: a resume that finds the request gone fails the run (``OPENCODE_PAUSE_LOST``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime import approvals
from runtime.engine import (
    CancelOutcome,
    Completed,
    EngineEvent,
    EngineRef,
    EngineSession,
    Failed,
    Paused,
    RunContext,
)
from runtime.engines.opencode.client import OpenCodeError
from runtime.engines.opencode.config import ProviderRef, ProviderSetupError
from runtime.engines.opencode.policy import (
    permission_reply,
    scrub_project_config,
    session_rules,
)
from runtime.engines.opencode.translate import (
    Asked,
    Idle,
    Progress,
    Retrying,
    SessionFailed,
    Translator,
    settle,
)
from runtime.sandbox.deps import DependencyCache, DependencyError
from runtime.sandbox.policy import SandboxUnavailable, Tools
from runtime.sandbox.shell import register, unregister

if TYPE_CHECKING:
    from runtime.engines.opencode.client import OpenCodeClient
    from runtime.engines.opencode.engine import OpenCodeEngine

log = logging.getLogger(__name__)

CANCEL_UNCONFIRMED = "OPENCODE_CANCEL_UNCONFIRMED"
UPSTREAM_UNREACHABLE = "OPENCODE_UPSTREAM_UNREACHABLE"
SERVER_LOST = "OPENCODE_SERVER_LOST"
REQUEST_FAILED = "OPENCODE_REQUEST_FAILED"
SETUP_FAILED = "OPENCODE_SETUP_FAILED"
PAUSE_LOST = "OPENCODE_PAUSE_LOST"
PAUSE_LOST_MESSAGE = (
    "The OpenCode permission request this run waited on is gone (an OpenCode pause lasts "
    "only while the OpenCode server holding its session runs)"
)
STATE_KEY = "opencode"
"""The key of a pause's state in the run's checkpoint: ``{session_id, permission_id}``."""
# The instance of a finished run's directory: best effort, and short, because the pump
# reports the engine stopped only after close() (a cancel's grace is 5 s).
DISPOSE_SECONDS = 3.0


def build_prompt(ctx: RunContext) -> str:
    """The prompt text: earlier messages (contract 5, already normalised) as context, then
    the run's input. The stored messages end with the input itself (contract 5 appends it),
    so that last turn is not repeated as history. Only text turns are given: a session's
    earlier tool calls and results (docs/design.md 10) are the native engine's own record."""
    history = [
        m for m in ctx.messages
        if m.get("role") in ("user", "assistant", "system")
        and isinstance(m.get("content"), str) and m["content"].strip()
    ]  # fmt: skip
    if history and history[-1] == {"role": "user", "content": ctx.prompt}:
        history.pop()
    if not history:
        return ctx.prompt
    lines = [f"{m.get('role', 'user')}: {m.get('content', '')}" for m in history]
    return "Conversation so far:\n" + "\n".join(lines) + "\n\nCurrent request:\n" + ctx.prompt


def _failed(message: str, code: str) -> Failed:
    return Failed(message, [{"code": code, "message": message}])


def _unconfirmed(message: str) -> CancelOutcome:
    return CancelOutcome(False, [{"code": CANCEL_UNCONFIRMED, "message": message}])


class _Dropped:
    """End of one event stream (``error`` says why)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _EventPump:
    """Reads ``GET /event`` in a task into a bounded queue, so the session loop can wait
    with a timeout without tearing the stream down."""

    def __init__(self, client: OpenCodeClient, directory: str) -> None:
        self.queue: asyncio.Queue[dict[str, Any] | _Dropped] = asyncio.Queue(maxsize=1000)
        self._client = client
        self._directory = directory
        self._connected: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None

    async def open(self, within: float) -> None:
        """Start reading; return once the first frame arrived.

        Raises:
            OpenCodeError: the stream failed first; TimeoutError: no frame within ``within`` s.
        """
        self._task = asyncio.create_task(self._read(), name="opencode-events")
        await asyncio.wait_for(asyncio.shield(self._connected), within)

    async def _read(self) -> None:
        error: BaseException
        try:
            async for frame in self._client.events(self._directory):
                if not self._connected.done():
                    self._connected.set_result(None)
                await self.queue.put(frame)
            error = OpenCodeError("event stream ended")  # pragma: no cover - events() raises
        except OpenCodeError as exc:
            error = exc
        if not self._connected.done():
            self._connected.set_exception(error)
        await self.queue.put(_Dropped(error))

    async def close(self) -> None:
        """Stop reading and close the connection (a cancellation of the caller still
        propagates: the reader is awaited with ``asyncio.wait``, never suppressed)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
            if not task.cancelled():
                task.exception()  # mark retrieved; the reader reports through the queue
        if not self._connected.done():
            self._connected.cancel()
        elif not self._connected.cancelled():
            self._connected.exception()  # mark retrieved


class OpenCodeSession(EngineSession):
    """One run execution on OpenCode (created by ``OpenCodeEngine.open``)."""

    def __init__(self, engine: OpenCodeEngine, ctx: RunContext) -> None:
        self.engine = engine
        self.ctx = ctx
        self.settings = engine.settings
        self.session_id: str | None = ctx.engine_run_ref
        self._directory: str | None = None
        self._disposed = False
        self._started = False
        self._cancelling = False
        self._prompt_lock = asyncio.Lock()
        self._stopped = asyncio.Event()
        self._pump: _EventPump | None = None
        self._policy = approvals.run_policy(ctx.input_params)

    # -- events --------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[EngineEvent]:
        """Yield :class:`EngineRef` first, then deltas, tool and plan events, then exactly one
        :class:`Completed` or :class:`Failed` (see the module docstring)."""
        self._started = True
        try:
            async for event in self._events():
                yield event
        finally:
            if self._pump is not None:
                await self._pump.close()
                self._pump = None
            shell = self.engine.shell
            if shell is not None and self.session_id is not None:
                await asyncio.to_thread(unregister, shell.registry, self.session_id)

    async def close(self) -> None:
        """Dispose of OpenCode's instance for this run's directory: each run has its own
        workspace (runtime/run_workspaces.py), so the instance would otherwise stay loaded
        in the server after the run. Best effort, bounded; a resumed run boots it again.
        Not after a pause on a permission request: the instance holds the request."""
        if self._directory is None or self._disposed:
            return
        self._disposed = True
        try:
            await self.engine.client.dispose_instance(self._directory, seconds=DISPOSE_SECONDS)
        except (OpenCodeError, RuntimeError) as exc:
            log.info("OpenCode run %s: disposing its instance failed: %s", self.ctx.run_id, exc)

    async def _events(self) -> AsyncIterator[EngineEvent]:
        ctx = self.ctx
        if ctx.model is None:
            yield _failed("OpenCode run has no pinned model", SETUP_FAILED)
            return
        if ctx.workspace is None:
            yield _failed("OpenCode run has no workspace", SETUP_FAILED)
            return
        problem = await self.engine.model_problem(ctx.model)
        if problem is not None:
            yield _failed(f"OpenCode setup failed: {problem}", SETUP_FAILED)
            return
        workspace = ctx.workspace
        self._directory = directory = str(await asyncio.to_thread(workspace.resolve))
        removed = await asyncio.to_thread(scrub_project_config, Path(directory))
        if removed:
            log.warning("OpenCode run %s: removed %s from the workspace (OpenCode config "
                        "is the operator's)", ctx.run_id, ", ".join(removed))  # fmt: skip
        try:
            ref = await self.engine.ensure_provider(ctx.model, directory)
            client = self.engine.client
        except (OpenCodeError, ProviderSetupError, ValueError, OSError, RuntimeError) as exc:
            yield _failed(f"OpenCode setup failed: {exc}", SETUP_FAILED)
            return
        resumed = self.session_id is not None
        try:
            if self.session_id is None:
                rules = session_rules(
                    bash=self.settings.opencode_bash_permission,
                    ask_bash=approvals.permission_needs_approval(self._policy, "bash"),
                )
                title = f"App {ctx.app_id} run {ctx.run_id}"
                session = await client.create_session(directory, title=title, permission=rules)
                self.session_id = str(session["id"])
            await self._allow_bash(Path(directory))
        except OpenCodeError as exc:
            yield _failed(f"OpenCode session could not be created: {exc}", REQUEST_FAILED)
            return
        yield EngineRef(self.session_id)
        translator = Translator(self.session_id)
        waiting = self._pause_state() is not None  # resumed from a pause on a permission
        try:
            self._pump = await self._open_pump()
            settled = await self._start_prompt(ref, resumed)
        except (OpenCodeError, TimeoutError) as exc:
            if waiting:
                yield _failed(f"{PAUSE_LOST_MESSAGE}: {exc}", PAUSE_LOST)
            else:
                yield _failed(f"OpenCode request failed: {exc}", REQUEST_FAILED)
            return
        if settled is not None:
            # Idle while it should wait on the permission: the request is gone (an OpenCode
            # server restarted from its stored sessions keeps no pending request).
            yield (
                _failed(f"{PAUSE_LOST_MESSAGE}: the session is idle", PAUSE_LOST)
                if waiting
                else settled
            )
            return
        lost = await self._reply_to_pause()
        if lost is not None:
            yield lost
            return
        async for event in self._consume(translator):
            yield event

    async def _allow_bash(self, workspace: Path) -> None:
        """Register the session with the sandboxed shell when bash is allowed: its bash
        commands then run in a sandbox of ``workspace`` (and only of it), with the app's
        dependencies installed first (a failed install leaves them out, and says why in
        the log)."""
        shell = self.engine.shell
        if shell is None or self.settings.opencode_bash_permission != "allow":
            return
        assert self.session_id is not None
        deps: Path | None = None
        try:
            deps = await DependencyCache(self.settings, Tools.find()).ensure(workspace)
        except (DependencyError, SandboxUnavailable) as exc:
            log.warning("OpenCode run %s: app dependencies unavailable: %s", self.ctx.run_id, exc)
        await asyncio.to_thread(register, shell.registry, self.session_id, workspace, deps)

    async def _open_pump(self) -> _EventPump:
        assert self._directory is not None
        pump = _EventPump(self.engine.client, self._directory)
        try:
            await pump.open(self.settings.opencode_request_timeout_seconds)
        except BaseException:
            await pump.close()
            raise
        return pump

    async def _start_prompt(self, ref: ProviderRef, resumed: bool) -> Completed | Failed | None:
        """Send the prompt, unless a resumed session already has it (then reconcile).

        Returns:
            A terminal event when a resumed session already finished, else None.
        """
        assert self._directory is not None and self.session_id is not None
        client = self.engine.client
        if resumed:
            messages = await client.messages(self._directory, self.session_id)
            if any((m.get("info") or {}).get("role") == "user" for m in messages):
                return await self._reconcile()
        async with self._prompt_lock:
            if self._cancelling:
                return None  # cancel() owns the outcome; the task is about to be cancelled
            await client.prompt_async(
                self._directory,
                self.session_id,
                text=build_prompt(self.ctx),
                provider_id=ref.provider_id,
                model_id=ref.model_key,
            )
        return None

    async def _consume(self, translator: Translator) -> AsyncIterator[EngineEvent]:
        loop = asyncio.get_running_loop()
        s = self.settings
        retry_since: float | None = None
        retry_message = ""
        while True:
            assert self._pump is not None
            timeout = s.opencode_stream_idle_seconds
            if retry_since is not None:
                timeout = min(
                    timeout, retry_since + s.opencode_upstream_deadline_seconds - loop.time()
                )
            try:
                # Not asyncio.wait_for: on Python 3.11 it loses a cancellation that arrives
                # as get() completes, and this loop would then outlive its cancelled run.
                async with asyncio.timeout(max(timeout, 0.0)):
                    item = await self._pump.queue.get()
            except TimeoutError:
                if retry_since is not None and (
                    loop.time() - retry_since >= s.opencode_upstream_deadline_seconds
                ):
                    yield await self._give_up_upstream(retry_message)
                    return
                item = _Dropped(OpenCodeError(f"no event for {s.opencode_stream_idle_seconds} s"))
            if isinstance(item, _Dropped):
                terminal = await self._recover(item.error)
                if terminal is not None:
                    yield terminal
                    return
                continue
            for out in translator.feed(item):
                if isinstance(out, Progress):
                    retry_since = None
                elif isinstance(out, Retrying):
                    retry_message = out.message
                    if retry_since is None:
                        retry_since = loop.time()
                elif isinstance(out, Asked):
                    pause = await self._answer(out)
                    if pause is not None:
                        # The instance holds the waiting request: close() must keep it.
                        self._disposed = True
                        yield pause
                        return
                elif isinstance(out, SessionFailed | Idle):
                    self._stopped.set()
                    if self._cancelling:
                        continue  # cancel() reports; the consumer cancels this task
                    yield out.failed if isinstance(out, SessionFailed) else await self._settle()
                    return
                else:
                    yield out

    # -- helpers ---------------------------------------------------------------------------

    async def _settle(self) -> Completed | Failed:
        assert self._directory is not None and self.session_id is not None
        try:
            messages = await self.engine.client.messages(self._directory, self.session_id)
        except OpenCodeError as exc:
            return _failed(f"OpenCode result could not be read: {exc}", REQUEST_FAILED)
        return settle(messages, self.session_id)

    async def _reconcile(self) -> Completed | Failed | None:
        """After (re)connecting: settle if the session is idle, else None (keep streaming).

        Raises:
            OpenCodeError: the status could not be read.
        """
        assert self._directory is not None and self.session_id is not None
        status = await self.engine.client.status(self._directory)
        if (status.get(self.session_id) or {}).get("type", "idle") == "idle":
            self._stopped.set()
            return await self._settle()
        return None

    async def _recover(self, error: BaseException) -> Completed | Failed | None:
        """Reopen a dropped stream and reconcile; a terminal event when done or lost."""
        s = self.settings
        log.warning("OpenCode event stream for %s dropped: %s", self.session_id, error)
        last: BaseException = error
        for attempt in range(s.opencode_reconnect_attempts):
            await asyncio.sleep(min(0.5 * 2**attempt, 5.0))
            if self._pump is not None:
                await self._pump.close()
                self._pump = None
            try:
                self._pump = await self._open_pump()
                terminal = await self._reconcile()
            except (OpenCodeError, TimeoutError) as exc:
                last = exc
                continue
            if terminal is not None and self._cancelling:
                # cancel() reports the outcome and the consumer cancels this task; only
                # if it never does, end with the terminal event after all.
                await asyncio.sleep(2 * s.opencode_cancel_timeout_seconds)
            return terminal
        message = f"OpenCode server connection lost: {last}"
        return _failed(message, SERVER_LOST)

    async def _give_up_upstream(self, retry_message: str) -> Failed:
        deadline = self.settings.opencode_upstream_deadline_seconds
        message = (
            f"OpenCode could not reach the model provider within {deadline:g} s: "
            f"{retry_message or 'retrying'}"
        )
        assert self._directory is not None and self.session_id is not None
        try:
            await self.engine.client.abort(self._directory, self.session_id)
        except OpenCodeError as exc:
            log.warning("abort of %s after upstream deadline failed: %s", self.session_id, exc)
        return _failed(message, UPSTREAM_UNREACHABLE)

    async def _answer(self, asked: Asked) -> Paused | None:
        """Answer a question (rejected) or a permission request: by :mod:`.policy`, or,
        when the policy allows it and the run's approval policy marks it, by a person:
        then the :class:`Paused` to end the session with (the request stays open)."""
        assert self._directory is not None
        request_id = str(asked.request.get("id") or "")
        if not request_id:
            return None
        try:
            if asked.kind == "question":
                await self.engine.client.reject_question(self._directory, request_id)
                return None
            workspace = self.ctx.workspace
            assert workspace is not None
            permission = str(asked.request.get("permission") or "")
            if permission == "bash" and self.settings.opencode_bash_permission == "allow":
                reply: str = "once"  # asked only for the person: the sandbox still applies
            else:
                reply = await asyncio.to_thread(permission_reply, asked.request, workspace)
            if reply == "once" and approvals.permission_needs_approval(self._policy, permission):
                return self._pause(request_id, permission, asked.request, workspace)
            await self.engine.client.reply_permission(self._directory, request_id, reply)
        except OpenCodeError as exc:
            log.warning("reply to OpenCode %s %s failed: %s", asked.kind, request_id, exc)
        return None

    def _pause(
        self, request_id: str, permission: str, request: dict[str, Any], workspace: Path
    ) -> Paused:
        """Pause on permission request ``request_id`` (OpenCode's id is the approval's
        request id). What the person sees: the permission, its patterns and the metadata
        OpenCode gave (file path made workspace-relative, diff, command); not editable:
        OpenCode runs its own call, approved or not."""
        root = f"{workspace}/"
        metadata = {
            key: value.replace(root, "") if isinstance(value, str) else value
            for key, value in (request.get("metadata") or {}).items()
            if key in ("filepath", "diff", "command", "description")
        }
        patterns = [str(p).replace(root, "") for p in request.get("patterns") or []]
        pending = approvals.PendingApproval(
            request_id, permission, {"patterns": patterns, **metadata}, editable=False
        )
        state = {"session_id": self.session_id, "permission_id": request_id}
        return Paused(checkpoint={STATE_KEY: state}, approval=pending.as_dict())

    def _pause_state(self) -> dict[str, Any] | None:
        """``{session_id, permission_id}`` when this run resumes from a pause on an
        OpenCode permission request, else None."""
        resume = self.ctx.resume
        state = resume.checkpoint.get(STATE_KEY) if resume is not None else None
        return state if isinstance(state, dict) else None

    async def _reply_to_pause(self) -> Failed | None:
        """On a run resumed from a pause on a permission request: send the person's
        decision as OpenCode's reply (reject with the message); a Failed when the request
        is gone (its OpenCode server restarted or the session ended)."""
        resume, state = self.ctx.resume, self._pause_state()
        if resume is None or state is None:
            return None
        decision = approvals.Decision.from_payload(resume.payload)
        permission_id = str(state.get("permission_id") or "")
        if decision is None or decision.request_id != permission_id:
            return _failed("OpenCode run resumed without a decision on its request", PAUSE_LOST)
        assert self._directory is not None
        reply = "once" if decision.approve else "reject"
        message = None if decision.approve else decision.message
        try:
            await self.engine.client.reply_permission(
                self._directory, permission_id, reply, message
            )
        except OpenCodeError as exc:
            return _failed(f"{PAUSE_LOST_MESSAGE}: {exc}", PAUSE_LOST)
        return None

    # -- cancel --------------------------------------------------------------------------------

    async def cancel(self) -> CancelOutcome:
        """``POST /session/{id}/abort``, then confirm the session is idle (a ``session.idle``
        seen by :meth:`events` or ``GET /session/status``) within
        ``opencode_cancel_timeout_seconds`` (contract 1.7 and 6, fail-closed).

        Returns:
            Confirmed when nothing was started upstream or the session is idle; otherwise
            unconfirmed with ``[{code: "OPENCODE_CANCEL_UNCONFIRMED", message}]``.
        """
        if not self._started and self.session_id is None:
            return CancelOutcome(True)  # cancel before start: nothing exists upstream
        timeout = self.settings.opencode_cancel_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                async with self._prompt_lock:  # never race a prompt in flight
                    self._cancelling = True
        except TimeoutError:
            self._cancelling = True
        if self.session_id is None:
            return _unconfirmed("Missing OpenCode run reference")
        directory = self._directory or self.ctx.workspace and str(self.ctx.workspace)
        if not directory:
            return _unconfirmed("Missing OpenCode run reference")
        try:
            async with asyncio.timeout(timeout):  # the cancel budget, not the request timeout
                accepted = await self.engine.client.abort(directory, self.session_id)
        except TimeoutError:
            self._disposed = True  # a server that does not answer an abort: no dispose either
            return _unconfirmed(f"OpenCode cancellation request failed: no answer in {timeout:g} s")
        except (OpenCodeError, RuntimeError) as exc:
            self._disposed = True
            return _unconfirmed(f"OpenCode cancellation request failed: {exc}")
        if not accepted:  # contract 6: an abort answered `false` is not a confirmation
            return _unconfirmed("OpenCode cancellation not confirmed")
        if await self._confirm_idle(directory, timeout):
            return CancelOutcome(True)
        return _unconfirmed("OpenCode cancellation not confirmed")

    async def _confirm_idle(self, directory: str, within: float) -> bool:
        assert self.session_id is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            if self._stopped.is_set():
                return True
            try:
                status = await self.engine.client.status(directory)
                if (status.get(self.session_id) or {}).get("type", "idle") == "idle":
                    return True
            except OpenCodeError:
                pass
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), min(0.25, remaining))
