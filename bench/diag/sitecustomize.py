"""Benchmark-only diagnostics, loaded into the server when ``bench.stack`` puts this folder
on ``PYTHONPATH`` (``--gc-log``): logs every garbage collection's generation, duration and
object count to ``$BENCH_GC_LOG`` (one line per collection, written at exit).

``$BENCH_GC_FREEZE_AFTER=S`` (``--gc-freeze-after S``) also calls ``gc.freeze()`` S seconds
after start-up: an experiment for the proposal to freeze start-up objects in the server.
``$BENCH_GC_THRESHOLD=t0,t1,t2`` (``--env BENCH_GC_THRESHOLD=...``) sets
``gc.set_threshold(t0, t1, t2)`` at start-up (an experiment; needs ``--gc-log``).
"""

from __future__ import annotations

import atexit
import gc
import os
import threading
import time

_path = os.environ.get("BENCH_GC_LOG")
if _path:
    _records: list[tuple[float, int, float, int]] = []
    _start: list[float] = [0.0]

    def _on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            _start[0] = time.perf_counter()
        elif len(_records) < 200_000:
            duration = time.perf_counter() - _start[0]
            _records.append((time.time(), info["generation"], duration, info["collected"]))

    def _dump() -> None:
        with open(_path, "w") as fh:
            for wall, gen, duration, collected in _records:
                fh.write(f"{wall:.3f} {gen} {duration * 1000:.2f} {collected}\n")

    gc.callbacks.append(_on_gc)
    atexit.register(_dump)

_threshold = os.environ.get("BENCH_GC_THRESHOLD")
if _threshold:
    gc.set_threshold(*(int(part) for part in _threshold.split(",")))

_freeze_after = os.environ.get("BENCH_GC_FREEZE_AFTER")
if _freeze_after:
    _timer = threading.Timer(float(_freeze_after), gc.freeze)
    _timer.daemon = True
    _timer.start()
