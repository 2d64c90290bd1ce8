"""A Runwright-managed ``opencode serve`` process (docs/opencode.md sections 2 and 4).

The server runs offline and isolated: its own HOME and XDG directories under
``<data_dir>/opencode/home``, the ``OPENCODE_DISABLE_*`` switches of the notes, our
provider config directory as ``OPENCODE_CONFIG_DIR``, a generated password (basic auth on
every call), its own process group, killed by the kernel if its parent dies
(:func:`pdeathsig_prefix`). :meth:`ManagedServer.stop` sends SIGTERM to the whole
group and SIGKILL after a grace period (once, SIGTERM alone was not enough).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from runtime.engines.opencode.client import OpenCodeClient, OpenCodeError
from runtime.processes import free_port, pdeathsig_prefix, stop_group

log = logging.getLogger(__name__)

OFFLINE_ENV = {
    "OPENCODE_DISABLE_AUTOUPDATE": "1",
    "OPENCODE_DISABLE_MODELS_FETCH": "1",
    "OPENCODE_DISABLE_SHARE": "1",
    "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
    "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
    "OPENCODE_DISABLE_CLAUDE_CODE": "1",
    "OPENCODE_DISABLE_EXTERNAL_SKILLS": "1",
    # A workspace's opencode.json, .opencode/ (plugins!) and AGENTS.md are written by the
    # model: they must never configure the server (e.g. point "shell" past the sandbox).
    "OPENCODE_DISABLE_PROJECT_CONFIG": "1",
}


class ServerStartError(Exception):
    """The managed OpenCode server did not become healthy."""


# What the managed server inherits from Runwright's environment: what node and TLS need.
# Nothing else: the server process reads files for the model (its own file tools), so the
# JWT secret, database URL and other secrets must not be in its /proc/self/environ.
INHERITED_ENV = (
    "PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS",
)  # fmt: skip


def server_env(
    home: Path, config_dir: Path, password: str, key_env_names: Iterable[str] = ()
) -> dict[str, str]:
    """The managed server's environment.

    Inherits only :data:`INHERITED_ENV` and ``key_env_names`` (the variables the operator
    allows global models to read their API key from, referenced as ``{env:NAME}`` in the
    provider config), then sets HOME/XDG_* under ``home``, the offline switches,
    ``OPENCODE_CONFIG_DIR`` and ``OPENCODE_SERVER_PASSWORD``.
    """
    names = (*INHERITED_ENV, *key_env_names)
    env = {k: os.environ[k] for k in names if k in os.environ and not k.startswith("OPENCODE_")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        OPENCODE_CONFIG_DIR=str(config_dir),
        OPENCODE_SERVER_PASSWORD=password,
    )
    env.update(OFFLINE_ENV)
    return env


class ManagedServer:
    """One ``opencode serve`` child process.

    Args:
        binary: the OpenCode executable.
        root: state directory (``home/``, ``server.log`` and the process cwd live here).
        config_dir: the provider config directory (``OPENCODE_CONFIG_DIR``).
        password: basic-auth password; generated when None.
        username: basic-auth user (OpenCode's default ``opencode``).
        start_timeout: seconds to wait for ``/global/health``.
        stop_grace: seconds between SIGTERM and SIGKILL.
        key_env_names: environment variables passed on for global models' API keys.
    """

    def __init__(
        self,
        binary: Path,
        root: Path,
        config_dir: Path,
        *,
        password: str | None = None,
        username: str = "opencode",
        start_timeout: float = 60.0,
        stop_grace: float = 5.0,
        key_env_names: Iterable[str] = (),
    ) -> None:
        self.binary = binary
        self.key_env_names = tuple(key_env_names)
        self.root = root
        self.config_dir = config_dir
        self.password = password or secrets.token_urlsafe(24)
        self.username = username
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self.base_url: str | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The server's process id (also its process group id) while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the child has been started and has not exited."""
        return self._process is not None and self._process.returncode is None

    async def start(self) -> str:
        """Launch the server and wait until ``GET /global/health`` answers healthy.

        Returns:
            The base URL, ``http://127.0.0.1:<port>``.

        Raises:
            ServerStartError: the process exited or stayed unhealthy for ``start_timeout``
                seconds (it is stopped first; ``server.log`` has its output).
        """
        if self.running:
            assert self.base_url is not None
            return self.base_url
        home = self.root / "home"
        await asyncio.to_thread(_make_dirs, home, self.config_dir)
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self._log = await asyncio.to_thread(open, self.root / "server.log", "ab")
        self._process = await asyncio.create_subprocess_exec(
            *pdeathsig_prefix(),
            str(self.binary),
            "serve",
            "--hostname",
            "127.0.0.1",
            "--port",
            str(port),
            cwd=self.root,
            env=server_env(home, self.config_dir, self.password, self.key_env_names),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )
        try:
            await self._wait_healthy()
        except BaseException:
            await self.stop()
            raise
        log.info("opencode serve pid %s listening on %s", self._process.pid, self.base_url)
        return self.base_url

    async def _wait_healthy(self) -> None:
        assert self._process is not None and self.base_url is not None
        client = OpenCodeClient(self.base_url, password=self.password, username=self.username)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        last: Exception | None = None
        try:
            while loop.time() < deadline:
                if self._process.returncode is not None:
                    raise ServerStartError(
                        f"opencode serve exited with {self._process.returncode}; "
                        f"see {self.root / 'server.log'}"
                    )
                try:
                    if (await client.health(seconds=2.0)).get("healthy"):
                        return
                except OpenCodeError as exc:
                    last = exc
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._process.wait(), 0.2)
        finally:
            await client.aclose()
        raise ServerStartError(f"opencode serve not healthy after {self.start_timeout} s: {last}")

    async def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it after ``stop_grace`` s, reap the child."""
        process, self._process = self._process, None
        if process is not None:
            await stop_group(process, self.stop_grace)
        if self._log is not None:
            self._log.close()
            self._log = None


def _make_dirs(*paths: Path) -> None:
    for path in paths:
        path.mkdir(parents=True, exist_ok=True)
