"""The command relay: cancel sent to any node reaches the node executing the run (its
lease owner), which answers once its engine stopped (docs/design.md section 9).

Protocol, on ``rw_commands`` (every node listens; a message names its target node):

- request ``{"op": "cancel", "to": owner, "from": origin, "req": id, "run": run_id,
  "exp": unix time, "discard": bool}``: the owner cancels the run as if the request had
  arrived on it (the verified cancel of contract 1.7: its RunActor stops the engine, then
  writes the status; ``discard`` as the session strategy asked), then answers. A request
  that arrives after ``exp`` (the origin already gave up: the owner was stopped, or its
  listener was reconnecting) is dropped, so a cancel the client
  was told failed never happens later (``exp`` is wall-clock time: the nodes' clocks must
  agree to well under the timeout, as NTP keeps them).
- answer ``{"op": "answered", "to": origin, "req": id, "ok": bool}``: the origin then asks
  its own actor again, which returns the run's row (its final status).

The origin waits at most ``timeout`` seconds (``RUNWRIGHT_COMMAND_RELAY_TIMEOUT_SECONDS``),
then fails closed with :class:`~runtime.runs.errors.RunOwnerUnresponsive`. It re-sends a
pending request on every listener poll tick (a lost notification delays the cancel, the
owner serves a repeated request once), and checks the run's row then too (a lost answer
does not turn a done cancel into a failure).

Resume needs no relay: a paused run has no owner (its lease is released when it pauses),
so any node moves it back to ``queued`` itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from runtime.cluster import channels
from runtime.runs.errors import RunError, RunOwnerUnresponsive
from runtime.runs.states import RUNNING
from storage.errors import StorageError

log = logging.getLogger(__name__)

Send = Callable[[str, str], Awaitable[None]]
"""Sends ``(channel, payload)`` (``storage.notify.notify`` on the pool)."""


@dataclass(slots=True)
class _Pending:
    """A relayed request this node waits on."""

    message: dict[str, Any]
    answer: asyncio.Future[bool]
    settled: Callable[[], Awaitable[bool]]


class CommandRelay:
    """Both ends of the relay for one node. Every method runs on the asyncio loop.

    Args:
        node_id: this node's id (``RUNWRIGHT_NODE_ID``; the lease owner of its runs).
        send: sends a notification.
        cancel_here: ``(run_id, discard)``: cancels a run on this node without relaying
            (the owner's side); returns its row.
        timeout: seconds the origin waits for the owner's answer.
    """

    def __init__(
        self,
        *,
        node_id: str,
        send: Send,
        cancel_here: Callable[[uuid.UUID, bool], Awaitable[dict[str, Any]]],
        timeout: float,
    ) -> None:
        self._node = node_id
        self._send = send
        self._cancel_here = cancel_here
        self._timeout = timeout
        self._pending: dict[str, _Pending] = {}
        self._serving: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def cancel(
        self,
        run_id: uuid.UUID,
        owner: str,
        settled: Callable[[], Awaitable[bool]],
        *,
        discard: bool = False,
    ) -> bool:
        """Relay a cancel of ``run_id`` to node ``owner`` and wait for its answer.

        Args:
            settled: reads whether the run no longer runs under ``owner`` (checked on
                poll ticks, for an answer that was lost).
            discard: a session run's work is discarded (the ``rollback`` strategy).

        Returns:
            The owner's answer: True when it cancelled (or found the run settled), False
            when it does not hold the run (another node took it over meanwhile).

        Raises:
            RunOwnerUnresponsive: no answer within the timeout (fail closed).
        """
        req = uuid.uuid4().hex
        message = {
            "op": "cancel", "to": owner, "from": self._node, "req": req, "run": str(run_id),
            "exp": round(time.time() + self._timeout, 3), "discard": discard,
        }  # fmt: skip
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending[req] = _Pending(message, answer, settled)
        try:
            with contextlib.suppress(StorageError):  # re-sent on the next poll tick
                await self._publish(message)
            return await asyncio.wait_for(asyncio.shield(answer), self._timeout)
        except TimeoutError:
            raise RunOwnerUnresponsive(owner, self._timeout) from None
        finally:
            del self._pending[req]

    def on_command(self, payload: str | None) -> None:
        """Listener subscriber of ``rw_commands`` (runs on the loop, never blocks)."""
        if payload is None:
            for req in list(self._pending):
                self._spawn(self._recheck(req))
            return
        try:
            message = json.loads(payload)
            to, op, req = message["to"], message["op"], str(message["req"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed %s payload %r", channels.COMMANDS, payload[:100])
            return
        if to != self._node:
            return
        if op == "answered":
            pending = self._pending.get(req)
            if pending is not None and not pending.answer.done():
                pending.answer.set_result(bool(message.get("ok")))
        elif op == "cancel":
            if req in self._serving:
                return  # a re-sent request being served already
            if time.time() > float(message.get("exp", 0)):
                log.warning("dropping the relayed cancel of run %s from %s: it expired",
                            message.get("run"), message.get("from"))  # fmt: skip
                return
            self._serving.add(req)
            self._spawn(self._serve(message))

    async def stop(self) -> None:
        """Cancel the requests being served or re-sent."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, message: dict[str, Any]) -> None:
        """The owner's side: cancel here, then answer."""
        req = str(message["req"])
        try:
            run_id = uuid.UUID(str(message["run"]))
            ok = True
            try:
                row = await self._cancel_here(run_id, bool(message.get("discard")))
                # Still running under another owner: not ours to cancel (taken over).
                ok = not (row.get("status") == RUNNING and row.get("lease_owner") != self._node)
            except RunError as exc:
                log.warning("relayed cancel of run %s failed here: %s", run_id, exc)
                return  # no answer: the origin fails closed at its timeout
            answer = {"op": "answered", "to": message["from"], "req": req, "ok": ok}
            await self._publish(answer)
        except (StorageError, ValueError) as exc:
            log.warning("relayed cancel %s not answered: %s", req, exc)
        finally:
            self._serving.discard(req)

    async def _recheck(self, req: str) -> None:
        """Poll tick for a pending request: settled meanwhile? else send it again."""
        pending = self._pending.get(req)
        if pending is None or pending.answer.done():
            return
        try:
            if await pending.settled():
                if not pending.answer.done():
                    pending.answer.set_result(True)
                return
            await self._publish(pending.message)
        except StorageError as exc:
            log.warning("re-sending relayed cancel %s failed: %s", req, exc)

    async def _publish(self, message: dict[str, Any]) -> None:
        await self._send(channels.COMMANDS, json.dumps(message, separators=(",", ":")))
