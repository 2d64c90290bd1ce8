"""Benchmark environment: a fresh database, a real ``runwright serve`` process, its RSS.

Everything here is started by the benchmark and stopped by it, also on error: the server
runs in its own process group and :class:`Server` kills that group on exit.

The server talks to the local Postgres named by ``--pg`` (default
``postgresql://postgres@127.0.0.1:5432``); each benchmark creates (drops and re-creates) its
own database there, ``runwright_bench`` by default. Without ``DATABASE_URL`` Runwright would
start its embedded Postgres (``pgserver``) under ``RUNWRIGHT_DATA_DIR`` instead; the
benchmarks do not use it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
# `runwright` is the console script of an installed package; the repo's venv may run it from
# the source tree instead, which is the same entry point (web.cli:main).
RUNWRIGHT = [sys.executable, "-m", "web.cli"]
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432"
JWT_SECRET = "bench-secret-0123456789abcdef0123456789"
SYSTEM_PG_PREFIX = "/usr/lib/postgresql/"  # the Debian server DATABASE_URL points at


def free_port() -> int:
    """A free TCP port on loopback (below the ephemeral range is not guaranteed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def recreate_database(pg: str, name: str) -> str:
    """Drop and create database ``name``; return its DSN."""
    admin = f"{pg}/postgres"
    for sql in (f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'):
        subprocess.run(["psql", admin, "-q", "-c", sql], check=True, timeout=60)
    return f"{pg}/{name}"


def postgres_version(pg: str) -> str:
    out = subprocess.run(
        ["psql", f"{pg}/postgres", "-Atc", "show server_version"],
        check=True, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return out.stdout.strip()


@dataclass
class Tenancy:
    """What the load client needs: a token, the tenant and an app."""

    tenant_id: str
    user_id: str
    token: str
    app_id: str = ""
    model_id: str | None = None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "X-Tenant-ID": self.tenant_id}


@dataclass
class BenchEnv:
    """Environment variables shared by the CLI set-up commands and the server."""

    dsn: str
    data_dir: Path
    extra: dict[str, str] = field(default_factory=dict)
    repo: Path = REPO  # the checkout the server and CLI run from (before/after comparisons)

    def environ(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": self.dsn,
                "RUNWRIGHT_DATA_DIR": str(self.data_dir),
                "RUNWRIGHT_JWT_SECRET": JWT_SECRET,
                "RUNWRIGHT_SCRIPTED_ENGINE_ENABLED": "1",
                "RUNWRIGHT_LOCAL_MODEL_AUTOSTART": "0",
                "RUNWRIGHT_LOG_LEVEL": "WARNING",
            }
        )
        env.update(self.extra)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.repo), env.get("PYTHONPATH")]))
        return env

    def cli(self, *args: str) -> str:
        """Run ``runwright ARGS`` and return its stdout (stripped)."""
        out = subprocess.run(
            [*RUNWRIGHT, *args], env=self.environ(), check=True, capture_output=True,
            text=True, timeout=120, cwd=self.repo,
        )  # fmt: skip
        return out.stdout.strip()

    def seed(self) -> Tenancy:
        """Migrate, then create a tenant, an owner and its token with the CLI."""
        self.cli("migrate")
        tenant = self.cli("tenant", "create", "--name", "Bench")
        user = self.cli("user", "create", "--email", "bench@bench.test")
        self.cli("member", "add", "--tenant", tenant, "--user", user, "--role", "owner")
        token = self.cli("token", "--user", user, "--tenant", tenant, "--ttl", "86400")
        return Tenancy(tenant, user, token)


class RssSampler:
    """Samples the RSS (bytes) of a process and its descendants (``--workers N``: the
    parent plus its workers), summed, every ``interval`` seconds in a daemon thread."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self._proc = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self.peak = 0
        self.last = 0
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def reset(self) -> None:
        self.peak = self.last

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self._proc, *self._proc.children(recursive=True)]
                rss = self._proc.memory_info().rss
            except psutil.Error:
                return
            for child in procs[1:]:
                with contextlib.suppress(psutil.Error):
                    rss += child.memory_info().rss
            self.last = rss
            self.peak = max(self.peak, self.last)
            self._stop.wait(self._interval)


class Server:
    """``runwright serve`` in its own process group (optionally pinned with ``taskset``).

    Use as a context manager: the group is terminated (SIGTERM, then SIGKILL) on exit.
    """

    def __init__(self, env: BenchEnv, port: int, cpus: str | None, log_path: Path) -> None:
        self.env = env
        self.port = port
        self.cpus = cpus
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> Server:
        cmd = [*RUNWRIGHT, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.cpus and shutil.which("taskset"):
            cmd = ["taskset", "-c", self.cpus, *cmd]
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        try:
            self.proc = subprocess.Popen(
                cmd, env=self.env.environ(), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=self.env.repo,
            )  # fmt: skip
        finally:
            log.close()
        try:
            self._wait_ready(60.0)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early; see {self.log_path}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            time.sleep(0.2)
        raise RuntimeError(f"server not ready within {timeout} s; see {self.log_path}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary data directory, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def machine_info(pg: str) -> Mapping[str, str]:
    """nproc, CPU model, RAM, Python and Postgres versions (for the report)."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "ram_gib": f"{psutil.virtual_memory().total / 2**30:.1f}",
        "python": sys.version.split()[0],
        "postgres": postgres_version(pg),
    }


def _cpu(proc: psutil.Process) -> float:
    try:
        t = proc.cpu_times()
        return float(t.user + t.system)
    except psutil.Error:
        return 0.0


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` and all its descendants.

    Counts every live process of the tree (``runwright serve --workers N``: the parent and
    its N workers; sandboxed commands) plus, for each, the time of the children it has
    already reaped (``children_user``/``children_system``), so a worker or command that
    exited during a window is not lost. A process that died but was not reaped yet is
    missed; 0.0 when ``pid`` is gone.
    """
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def _is_system_postgres(proc: psutil.Process) -> bool:
    try:
        return proc.exe().startswith(SYSTEM_PG_PREFIX)
    except psutil.Error:
        return False


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine so far (every core, every process)."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0))


class CpuMeter:
    """CPU used over a window by the server (its whole process tree: with ``--workers N``
    the workers do the work, not the parent; :func:`tree_cpu`), the local Postgres, this
    client, and everything else on the machine (``other``: e.g. other people's test suites
    sharing the cores).

    Postgres backends that exit during the window are undercounted (their time is lost);
    the server's pool keeps its connections, so this is small. Values are in cores
    (1.0 = one core busy for the whole window).
    """

    def __init__(self, server_pid: int) -> None:
        self._server = server_pid
        self._me = psutil.Process()
        self._start: dict[str, float] = {}
        self._t0 = 0.0
        self.server_seconds = 0.0  # the server tree's CPU seconds over the window (stop)
        self.client_seconds = 0.0  # this process's CPU seconds over the window (stop)

    def _snapshot(self) -> dict[str, float]:
        pg = sum(_cpu(p) for p in psutil.process_iter() if _is_system_postgres(p))
        return {
            "server": tree_cpu(self._server),
            "postgres": pg,
            "client": _cpu(self._me),
            "machine": machine_busy(),
        }

    def start(self) -> CpuMeter:
        self._start = self._snapshot()
        self._t0 = time.perf_counter()
        return self

    def stop(self) -> dict[str, float]:
        end = self._snapshot()
        wall = max(1e-9, time.perf_counter() - self._t0)
        self.server_seconds = end["server"] - self._start["server"]
        self.client_seconds = end["client"] - self._start["client"]
        used = {k: (end[k] - self._start[k]) / wall for k in end}
        used["other"] = used["machine"] - used["server"] - used["postgres"] - used["client"]
        return {k: round(max(0.0, v), 2) for k, v in used.items()}


def wait_for_quiet(max_wait: float = 120.0, threshold: float = 0.3) -> float:
    """Wait (bounded) until the machine's busy CPU over 2 s is below ``threshold`` cores;
    return the last reading (the benchmark reports it)."""
    deadline = time.monotonic() + max_wait
    while True:
        before = machine_busy()
        time.sleep(2.0)
        load = (machine_busy() - before) / 2.0
        if load < threshold or time.monotonic() > deadline:
            return round(load, 2)
