"""The scripted OpenAI-compatible server as a process of its own, so a fault test can kill
it (SIGKILL) or freeze it (SIGSTOP) mid-reply.

Run as ``python -m tests.support.model_process --chunks N --delay S``: every chat request is
answered with the same text of ``N`` chunks, ``S`` seconds apart; each request is appended
as one line to ``--log`` (so the test counts model calls even after killing the server),
and ``PORT <n>`` is printed once it listens. :class:`ModelProcess` starts and always stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import threading
from pathlib import Path

from tests.support.openai_script import RecordedRequest
from tests.support.scripted_openai import ScriptedOpenAI, text_reply

REPO = Path(__file__).resolve().parents[2]


def chunks_of(count: int) -> list[str]:
    """The reply's chunks: ``"w00 "``, ``"w01 "``, ..."""
    return [f"w{i:02d} " for i in range(count)]


class _Logged(ScriptedOpenAI):
    def __init__(self, log: Path) -> None:
        super().__init__()
        self._log = log

    def _note_request(self, request: RecordedRequest) -> None:
        super()._note_request(request)
        if request.path.split("?")[0].rstrip("/").endswith("/chat/completions"):
            with self._log.open("a") as out:
                out.write("chat\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.1)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args(argv)
    chunks = chunks_of(args.chunks)
    server = _Logged(args.log)
    server.default = text_reply("".join(chunks), chunks=chunks, delay=args.delay)
    server.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"PORT {server.port}", flush=True)
    try:
        stop.wait(args.max_seconds)  # bounded even if nobody stops it
    finally:
        server.stop()
    return 0


class ModelProcess:
    """Start :func:`main` in a child process; :meth:`stop` kills it whatever its state.

    Args:
        log: file the server appends one line per chat request to.
        chunks / delay: the reply (see :func:`main`).
    """

    def __init__(self, log: Path, *, chunks: int, delay: float) -> None:
        self.log = log
        self.chunks = chunks
        self.delay = delay
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def calls(self) -> int:
        """Chat requests received so far."""
        return len(self.log.read_text().splitlines()) if self.log.exists() else 0

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.support.model_process", "--chunks", str(self.chunks),
            "--delay", str(self.delay), "--log", str(self.log),
            stdout=asyncio.subprocess.PIPE, cwd=REPO, start_new_session=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        if not line.startswith(b"PORT "):
            raise RuntimeError(f"model server did not start: {line!r}")
        self.port = int(line.split()[1])

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the server's process group."""
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)

    async def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGCONT)
            os.killpg(self.proc.pid, signal.SIGKILL)
        await asyncio.wait_for(self.proc.wait(), 30)
        self.proc = None


if __name__ == "__main__":
    sys.exit(main())
