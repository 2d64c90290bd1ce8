"""``runwright serve --workers N``: N server processes behind one port, one parent watching.

The parent binds the listening socket once and hands it to each worker (``serve
--listen-fd``, Hypercorn's ``fd://`` bind): the kernel gives each new connection to whichever
worker accepts first, so a busy or stopped worker leaves new connections to the others (with
``SO_REUSEPORT`` a stalled worker would keep its hash share of them). Each worker is a whole
Runwright node: its own node id (``<host>:<pid>``, or ``$RUNWRIGHT_NODE_ID/<index>`` when the
operator set one), its own Supervisor, pool and broker, all sharing the database. The parent
never imports the app; it only starts, watches and stops processes.

Rules (README, "Several nodes"):

- Start: worker 0 starts alone and must answer ``/livez`` (it applies the migrations, starts
  the local default model when there is one, registers the default model); the others start
  after it, with ``RUNWRIGHT_LOCAL_MODEL_AUTOSTART=0`` so only worker 0 owns the local model
  server. A worker 0 that exits before it answers makes the parent exit 1 (a settings or
  database problem: restarting would not fix it). Without ``DATABASE_URL`` the parent starts
  the embedded Postgres and gives its DSN to every worker.
- A worker that exits while the parent is not stopping (crash, ``kill -9``, an operator's
  SIGTERM to that one worker) is started again, with the same index; its replacement
  reconciles the runs the dead one left ``running`` (its ``<host>:<pid>`` is gone). More
  than :data:`RESTART_LIMIT` restarts within :data:`RESTART_WINDOW_SECONDS` is a crash loop:
  the parent stops every worker and exits 1.
- SIGTERM or SIGINT to the parent: SIGTERM to every worker, each drains (its live runs get
  the grace period, the rest are handed back, streams close), and the parent exits 0 once
  all have exited (1 if one exited non-zero). Workers still alive after the drain bound are
  killed (SIGKILL) and the parent exits 1; the next start reconciles their runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections import deque
from dataclasses import dataclass, field

from runtime.settings import Settings
from storage.embedded import EmbeddedPostgres

log = logging.getLogger("runwright.workers")

#: Restarts allowed within :data:`RESTART_WINDOW_SECONDS` before the parent gives up.
RESTART_LIMIT = 5
RESTART_WINDOW_SECONDS = 60.0
#: How long worker 0 may take to answer ``/livez`` (migrations, a local model start).
START_TIMEOUT_SECONDS = 300.0


class WorkersFailed(Exception):
    """The worker processes could not be started or kept running (exit status 1)."""


def listen_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port), inheritable.

    Raises:
        OSError: the address is in use or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def worker_env(base: dict[str, str], index: int, *, dsn: str | None) -> dict[str, str]:
    """The environment of worker ``index``: ``base`` plus its node id, DSN and model role.

    An operator's ``RUNWRIGHT_NODE_ID`` gets the suffix ``/<index>`` (node ids must differ;
    a restarted worker keeps its index, so it reconciles its predecessor's runs as its own);
    unset, each worker's default ``<host>:<pid>`` is already unique.
    """
    env = dict(base)
    if env.get("RUNWRIGHT_NODE_ID"):
        env["RUNWRIGHT_NODE_ID"] = f"{env['RUNWRIGHT_NODE_ID']}/{index}"
    if dsn is not None:
        env["DATABASE_URL"] = dsn
    if index > 0:
        env["RUNWRIGHT_LOCAL_MODEL_AUTOSTART"] = "0"
    return env


@dataclass
class _Worker:
    index: int
    proc: asyncio.subprocess.Process
    started: float = field(default_factory=time.monotonic)


class WorkerPool:
    """Starts, restarts and drains the worker processes of one ``serve --workers N``."""

    def __init__(
        self, settings: Settings, sock: socket.socket, count: int, *, dsn: str | None
    ) -> None:
        """``dsn``: the database every worker uses (None: each reads ``DATABASE_URL``)."""
        self.settings = settings
        self.sock = sock
        self.count = count
        self.workers: dict[int, _Worker] = {}
        self.restarts: deque[float] = deque()
        self.stopping = asyncio.Event()
        self.failed = False
        self._dsn = dsn

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}"

    async def _spawn(self, index: int) -> _Worker:
        fd = self.sock.fileno()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "web.cli", "serve", "--listen-fd", str(fd),
            env=worker_env(dict(os.environ), index, dsn=self._dsn), pass_fds=(fd,),
        )  # fmt: skip
        log.info("worker %d started (pid %d)", index, proc.pid)
        worker = _Worker(index, proc)
        self.workers[index] = worker
        return worker

    async def _first_ready(self, worker: _Worker) -> None:
        """Wait until worker 0 answers ``/livez`` on the shared socket (it is the only one
        accepting yet), or fail if it exits first."""

        host, port = self.sock.getsockname()[:2]

        async def live() -> None:
            # One plain request: the parent's socket queues the connection until worker 0
            # accepts it, so this waits for the worker without polling.
            while True:
                with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                    reader, writer = await asyncio.open_connection(host, port)
                    try:
                        writer.write(b"GET /livez HTTP/1.1\r\nHost: runwright\r\n"
                                     b"Connection: close\r\n\r\n")  # fmt: skip
                        status = await reader.readline()
                    finally:
                        writer.close()
                    if status.split(b" ")[1:2] == [b"200"]:
                        return
                await asyncio.sleep(0.2)  # reset (worker starting over): ask again

        probe = asyncio.create_task(live())
        exited = asyncio.create_task(worker.proc.wait())
        done, _ = await asyncio.wait(
            {probe, exited}, timeout=START_TIMEOUT_SECONDS, return_when=asyncio.FIRST_COMPLETED
        )
        probe.cancel()
        if probe not in done or exited in done:
            exited.cancel()
            code = worker.proc.returncode
            raise WorkersFailed(
                f"worker 0 exited during start-up (status {code})"
                if code is not None
                else f"worker 0 did not answer /livez within {START_TIMEOUT_SECONDS:.0f} s"
            )
        exited.cancel()

    def _restart_allowed(self) -> bool:
        now = time.monotonic()
        self.restarts.append(now)
        while self.restarts and now - self.restarts[0] > RESTART_WINDOW_SECONDS:
            self.restarts.popleft()
        return len(self.restarts) <= RESTART_LIMIT

    async def _watch(self, index: int) -> None:
        """Restart worker ``index`` whenever it exits, until the pool stops or gives up."""
        while not self.stopping.is_set():
            worker = self.workers[index]
            code = await worker.proc.wait()
            if self.stopping.is_set():
                return
            log.error("worker %d (pid %d) exited with status %s", index, worker.proc.pid, code)
            if not self._restart_allowed():
                log.error("more than %d worker restarts within %.0f s: stopping",
                          RESTART_LIMIT, RESTART_WINDOW_SECONDS)  # fmt: skip
                self.failed = True
                self.stopping.set()
                return
            await self._spawn(index)

    def drain_bound(self) -> float:
        """Seconds a worker may take to drain after SIGTERM before it is killed: the grace
        period, the hand-back bound of ``RunService.drain`` and 30 s for the lifespan."""
        s = self.settings
        return s.shutdown_grace_seconds + max(5.0, s.opencode_cancel_timeout_seconds) + 10 + 30

    async def _stop_all(self) -> bool:
        """SIGTERM every worker, wait for each; SIGKILL stragglers. True if all exited 0."""
        live = [w for w in self.workers.values() if w.proc.returncode is None]
        for worker in live:
            with contextlib.suppress(ProcessLookupError):
                worker.proc.send_signal(signal.SIGTERM)
        clean = True
        waits = [asyncio.create_task(w.proc.wait()) for w in live]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=self.drain_bound())
            if pending:
                clean = False
                for worker in live:
                    if worker.proc.returncode is None:
                        log.error("worker %d (pid %d) did not drain within %.0f s: killed",
                                  worker.index, worker.proc.pid, self.drain_bound())  # fmt: skip
                        with contextlib.suppress(ProcessLookupError):
                            worker.proc.kill()
                await asyncio.gather(*pending)
        for worker in self.workers.values():
            if worker.proc.returncode != 0:
                clean = False
        return clean

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT (exit status 0 after a clean drain) or failure (1)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        watchers: list[asyncio.Task[None]] = []
        try:
            first = await self._spawn(0)
            stop = asyncio.create_task(self.stopping.wait())
            ready = asyncio.create_task(self._first_ready(first))
            await asyncio.wait({stop, ready}, return_when=asyncio.FIRST_COMPLETED)
            if not ready.done():
                ready.cancel()
            elif ready.exception() is not None:
                stop.cancel()
                raise ready.exception()  # type: ignore[misc]
            if not self.stopping.is_set():
                for index in range(1, self.count):
                    await self._spawn(index)
                log.info("serving on %s with %d workers", self.url, self.count)
                watchers = [asyncio.create_task(self._watch(i)) for i in range(self.count)]
            await self.stopping.wait()
            stop.cancel()
        except WorkersFailed as exc:
            log.error("%s", exc)
            self.failed = True
        finally:
            self.stopping.set()
            for task in watchers:
                task.cancel()
            clean = await self._stop_all()
        log.info("all workers stopped")
        return 1 if self.failed or not clean else 0


def run_workers(settings: Settings, host: str, port: int, count: int) -> int:
    """Bind ``host:port``, run ``count`` workers until SIGTERM/SIGINT; the exit status.

    Without ``DATABASE_URL`` the embedded Postgres is started here, once, for all workers.

    Raises:
        WorkersFailed: the address cannot be bound.
    """
    try:
        sock = listen_socket(host, port)
    except OSError as exc:
        raise WorkersFailed(f"cannot listen on {host}:{port}: {exc}") from None
    embedded: EmbeddedPostgres | None = None
    try:
        dsn = settings.database_url
        if dsn is None:
            embedded = EmbeddedPostgres(settings.data_dir)
            dsn = embedded.start()
        return asyncio.run(WorkerPool(settings, sock, count, dsn=dsn).run())
    finally:
        sock.close()
        if embedded is not None:
            embedded.stop()


__all__ = ["WorkerPool", "WorkersFailed", "listen_socket", "run_workers", "worker_env"]
