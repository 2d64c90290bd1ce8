"""A node's listener: one dedicated connection that LISTENs on every channel
(:mod:`runtime.cluster.channels`) and hands notifications to in-process subscribers.

Subscribing (what the run service's event feed and command relay do, and what a claim
loop does to wake on new work)::

    unsubscribe = listener.subscribe(channels.WORK, lambda payload: wake.set())

A callback runs on the event loop, must not block, and gets either a notification's
payload (``str``) or ``None``. ``None`` means "a notification may have been missed: look
for yourself". It comes after every (re)connect and every ``poll_seconds`` (the slow poll:
a subscriber that rechecks the database on ``None`` delays a lost notification by at most
one poll interval but never loses it).

Failure rules:

- Any error of the connection (``pg_terminate_backend``, Postgres restarting, a ping that
  gets no answer within ``timeout``) closes it; a new one is opened after a back-off
  (0.05 s doubling to 5 s, reset once connected) and LISTENs again, then subscribers get
  ``None``.
- The task is :class:`runtime.tasks.Supervised`: an unexpected error is logged and the task
  started again. :meth:`Listener.unhealthy_reason` (a readiness check) is set from the
  moment the connection is lost or the task crashed until it listens again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from runtime.cluster import channels
from runtime.tasks import RESTART_FIRST_SECONDS, RESTART_MAX_SECONDS, Supervised
from storage.errors import DatabaseUnavailable
from storage.notify import ListenConnection

log = logging.getLogger(__name__)

Callback = Callable[[str | None], None]
"""A subscriber: gets a payload, or None for "look for yourself" (see the module doc)."""

APPLICATION_NAME = "runwright-listener"
"""``pg_stat_activity.application_name`` of the listening connection is this, a space and
the node id (cut to Postgres's 63 bytes)."""


class Listener:
    """The node's one LISTEN connection and its subscribers.

    Args:
        dsn: returns the DSN to connect to (read at each connect: the database step may
            start after this object is built).
        node_id: this node's id (in the connection's application name).
        poll_seconds: how often subscribers get ``None`` and the connection is pinged
            (``RUNWRIGHT_NOTIFY_POLL_SECONDS``).
        timeout: seconds a connect, LISTEN or ping may take.
    """

    def __init__(
        self, dsn: Callable[[], str], *, node_id: str, poll_seconds: float, timeout: float = 5.0
    ) -> None:
        self._dsn = dsn
        self._name = f"{APPLICATION_NAME} {node_id}".encode()[:63].decode(errors="ignore")
        self._poll = poll_seconds
        self._timeout = timeout
        self._subs: dict[str, list[Callback]] = {channel: [] for channel in channels.ALL}
        self._task = Supervised("notify-listener", self._run)
        self._connected = False
        self._listening = asyncio.Event()  # set once the first connection listens
        self._delay = RESTART_FIRST_SECONDS

    def subscribe(self, channel: str, callback: Callback) -> Callable[[], None]:
        """Call ``callback`` for every notification on ``channel`` and on every poll tick;
        returns a function that unsubscribes it.

        Raises:
            ValueError: ``channel`` is not one of :data:`runtime.cluster.channels.ALL`.
        """
        if channel not in self._subs:
            raise ValueError(f"unknown channel {channel!r}")
        self._subs[channel].append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subs[channel].remove(callback)

        return unsubscribe

    def unhealthy_reason(self) -> str | None:
        """None while listening; else why not (a readiness check)."""
        reason = self._task.unhealthy_reason()
        if reason is None and not self._connected:
            return "not listening (reconnecting)"
        return reason

    async def start(self) -> None:
        """Start listening in the background and wait (at most ``timeout`` seconds) until
        it listens, so a healthy node is ready when its start-up ends; otherwise readiness
        stays red until it connects."""
        await self._task.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), self._timeout)

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        await self._task.stop()

    async def _run(self) -> None:
        while True:
            try:
                await self._session()
            except DatabaseUnavailable as exc:
                log.warning("listener connection lost (%s); reconnecting in %.2f s",
                            exc, self._delay)  # fmt: skip
            await asyncio.sleep(self._delay)
            self._delay = min(self._delay * 2, RESTART_MAX_SECONDS)

    async def _session(self) -> None:
        """One connection's life: LISTEN, then ping and tick every poll interval until it
        fails (raises :class:`DatabaseUnavailable`)."""
        conn = await ListenConnection.open(
            self._dsn(), channels.ALL, self._dispatch,
            application_name=self._name, seconds=self._timeout,
        )  # fmt: skip
        try:
            self._connected = True
            self._listening.set()
            self._delay = RESTART_FIRST_SECONDS
            self._task.healthy()
            log.info("listening on %s", ", ".join(channels.ALL))
            self._tick()  # anything sent while we were not listening: look for it
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(conn.lost.wait(), self._poll)
                if conn.lost.is_set():
                    raise DatabaseUnavailable("the listening connection was closed")
                await conn.ping(self._timeout)
                self._tick()
        finally:
            self._connected = False
            conn.close()

    def _tick(self) -> None:
        for channel in channels.ALL:
            self._dispatch(channel, None)

    def _dispatch(self, channel: str, payload: str | None) -> None:
        for callback in list(self._subs.get(channel, ())):
            try:
                callback(payload)
            except Exception:  # one broken subscriber must not starve the others
                log.exception("a %s subscriber failed", channel)
