"""A scripted OpenAI-compatible server as its own process, for the native-engine benchmark.

Every chat-completions request is answered with the same streamed text of ``--chunks``
chunks and no delay (``tests.support.scripted_openai``). Prints ``PORT <n>`` on stdout once
it listens and serves until SIGTERM/SIGINT or ``--max-seconds``.

    .venv/bin/python -m bench.openai_stub --chunks 10
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from tests.support.scripted_openai import ScriptedOpenAI, text_reply


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    args = parser.parse_args(argv)
    chunks = [f"tok{i} " for i in range(args.chunks)]
    server = ScriptedOpenAI(model_ids=("bench-model",))
    server.default = text_reply("".join(chunks), chunks=chunks)
    server.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"PORT {server.port}", flush=True)
    try:
        while not stop.wait(5.0):
            server.requests.clear()  # keep memory flat over long runs
            if args.max_seconds <= 0:
                break
            args.max_seconds -= 5.0
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
