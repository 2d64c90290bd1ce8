"""Summarise a ``py-spy record --format raw`` file: top self and inclusive frames.

Idle samples (threads waiting in ``select``/``epoll``, ``Condition.wait``, ``Queue.get``) are
counted separately, so the tables show where CPU goes, not where threads sleep.

    .venv/bin/python -m bench.profile_report bench/results/throughput-scripted.profile.txt
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path

IDLE_MARKERS = ("select (selectors.py", "wait (threading.py", "get (queue.py", "_worker (")


# (category, substrings: a sample belongs to the first category any of its frames matches)
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("run actor / supervisor threads (pykka)", ("RunActor-", "Supervisor-", "pykka/")),
    ("event writer (batched INSERT)", ("runs/writer.py",)),
    ("SSE generator + framing", ("web/sse.py", "broker.py")),
    ("asyncpg queries from handlers", ("asyncpg/", "storage/")),
    ("auth (JWT decode, principal)", ("web/auth.py", "jwt/")),
    ("Quart/Hypercorn/h11 request handling", ("quart/", "hypercorn/", "h11/", "werkzeug/")),
    ("engine pump + scripted engine", ("pump.py", "engines/")),
    ("asyncio loop / transports / other", ("",)),
]


def categorise(frames: list[str]) -> str:
    """The first category whose marker appears in any frame of the stack."""
    joined = ";".join(frames)
    for name, markers in CATEGORIES:
        if any(m in joined for m in markers):
            return name
    return CATEGORIES[-1][0]


def _thread_kind(head: str) -> str:
    """``thread (123): RunActor-7`` -> ``RunActor``; the main thread stays ``MainThread``."""
    name = head.partition(": ")[2] or head or "?"
    return re.sub(r"-\d+$", "", name)


def _split(line: str) -> tuple[list[str], int] | None:
    stack, _, count = line.rpartition(" ")
    if not stack or not count.isdigit():
        return None
    return stack.split(";"), int(count)


def summarise(path: Path, top: int) -> str:
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    categories: collections.Counter[str] = collections.Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        parsed = _split(line)
        if parsed is None:
            continue
        frames, count = parsed
        thread = frames[0] if frames and frames[0].startswith(("thread", "process")) else ""
        leaf = frames[-1]
        if any(marker in leaf for marker in IDLE_MARKERS):
            idle += count
            continue
        total += count
        threads[_thread_kind(thread)] += count
        self_time[leaf] += count
        categories[categorise(frames)] += count
        for frame in set(frames[1:] if thread else frames):
            inclusive[frame] += count
    out = [f"busy samples: {total} (idle samples left out: {idle})", "", "## threads (busy)"]
    out += [f"{n:6d} {100 * n / total:5.1f}%  {t}" for t, n in threads.most_common(8)]
    out += ["", "## where the time goes (first matching category per sample)"]
    out += [f"{n:6d} {100 * n / total:5.1f}%  {c}" for c, n in categories.most_common()]
    out += ["", "## self time"]
    out += [f"{n:6d} {100 * n / total:5.1f}%  {f}" for f, n in self_time.most_common(top)]
    out += ["", "## inclusive time"]
    out += [f"{n:6d} {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    print(summarise(args.path, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
