"""A throw-away Postgres cluster a fault test owns: it may stop, kill or restart it.

Made with the machine's ``initdb`` / ``pg_ctl`` (:data:`PG_BIN`), never its Postgres
service: each cluster lives in its own temporary directory, listens on a free loopback port
and a private socket directory, and is stopped (``immediate``) when the test ends. As root,
the server runs as the ``postgres`` user (Postgres refuses to run as root).

:func:`initdb_template` runs ``initdb`` once per session; :class:`Cluster` copies that
directory, so a new cluster costs a directory copy and a start.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import asyncpg

PG_BIN = Path(os.environ.get("RUNWRIGHT_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
_RUN_AS = "postgres"
DATABASE = "runwright"
"""The database fault tests migrate and run the app on."""


def missing() -> str | None:
    """Why no cluster can be made here, or None."""
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        return f"no initdb/pg_ctl in {PG_BIN}"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(_RUN_AS)
        except KeyError:
            return f"running as root without a {_RUN_AS!r} user to run Postgres as"
    return None


def _user() -> dict[str, Any]:
    return {"user": _RUN_AS, "group": pwd.getpwnam(_RUN_AS).pw_gid} if os.geteuid() == 0 else {}


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(_RUN_AS)
        for root, dirs, files in os.walk(path):
            os.chown(root, entry.pw_uid, entry.pw_gid)
            for name in dirs + files:
                os.lchown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def initdb_template(root: Path) -> Path:
    """``initdb`` a data directory under ``root`` (trust auth on loopback; sync, for a
    session fixture) and return it."""
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    data = root / "template"
    data.mkdir()
    _own(root)
    subprocess.run(
        [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
         "-E", "UTF8", "--no-sync", "--no-instructions"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **_user(),
    )  # fmt: skip
    return data


class Cluster:
    """One private Postgres server made from a template data directory.

    Args:
        template: a data directory from :func:`initdb_template`.
        root: an empty directory for this cluster's data, socket and log.
    """

    def __init__(self, template: Path, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.log = root / "postgres.log"
        self.port = _free_port()
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o755)
        shutil.copytree(template, self.data)
        self.sockets.mkdir()
        _own(root)

    def dsn(self, database: str = "postgres") -> str:
        """A loopback TCP DSN for ``database``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    async def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-c port={self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.sockets} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
        )
        await self._pg_ctl("start", "-w", "-t", "120", "-o", options, "-l", str(self.log))

    async def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m <mode>`` (``fast`` rolls back and disconnects every session;
        ``immediate`` is a crash)."""
        await self._pg_ctl("stop", "-w", "-t", "120", "-m", mode)

    async def execute(self, sql: str, database: str = "postgres") -> None:
        """Run ``sql`` on a fresh connection (set-up and fault injection)."""
        conn = await asyncpg.connect(self.dsn(database))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def fetchval(self, sql: str, *args: Any, database: str = "postgres") -> Any:
        """One value of ``sql`` (parameters ``args``) on a fresh connection."""
        conn = await asyncpg.connect(self.dsn(database))
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    async def terminate_backends(self, database: str) -> int:
        """``pg_terminate_backend`` every other session on ``database``; returns how many."""
        value = await self.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        return int(value)

    async def _pg_ctl(self, *args: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, **_user(),
        )  # fmt: skip
        _, err = await proc.communicate()
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl {args[0]} failed: {err.decode()}\n{log}")

    async def destroy(self) -> None:
        """Stop the server if it runs (``immediate``) and remove its directory."""
        if (self.data / "postmaster.pid").exists():
            try:
                await self.stop("immediate")
            except RuntimeError:
                pass
        shutil.rmtree(self.root.parent if self.root.parent.name.startswith("runwright-pg-")
                      else self.root, ignore_errors=True)  # fmt: skip
