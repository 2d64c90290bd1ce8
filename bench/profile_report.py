"""Summarise a ``py-spy record --format raw`` file: top self and inclusive frames.

Idle samples (threads waiting in ``select``/``epoll``, ``Condition.wait``, ``Queue.get``) are
counted separately, so the tables show where CPU goes, not where threads sleep.

    .venv/bin/python -m bench.profile_report bench/results/throughput-scripted.profile.txt
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

IDLE_MARKERS = ("select (selectors.py", "wait (threading.py", "get (queue.py", "_worker (")


def _split(line: str) -> tuple[list[str], int] | None:
    stack, _, count = line.rpartition(" ")
    if not stack or not count.isdigit():
        return None
    return stack.split(";"), int(count)


def summarise(path: Path, top: int, main_only: bool) -> str:
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        parsed = _split(line)
        if parsed is None:
            continue
        frames, count = parsed
        thread = frames[0] if frames and frames[0].startswith(("thread", "process")) else ""
        if main_only and "MainThread" not in line.split(";", 2)[1 if thread else 0]:
            pass
        leaf = frames[-1]
        if any(marker in leaf for marker in IDLE_MARKERS):
            idle += count
            continue
        total += count
        threads[frames[1] if len(frames) > 1 and thread else thread] += count
        self_time[leaf] += count
        for frame in set(frames[1:] if thread else frames):
            inclusive[frame] += count
    out = [f"busy samples: {total} (idle samples left out: {idle})", "", "## threads (busy)"]
    out += [f"{n:6d} {100 * n / total:5.1f}%  {t}" for t, n in threads.most_common(8)]
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
    print(summarise(args.path, args.top, False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
