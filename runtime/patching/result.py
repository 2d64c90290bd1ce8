"""The runtime result object of ``apply_patch`` (contract 7.4)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from runtime.patching import codes
from runtime.patching.model import Failure


def build_result(
    code: str,
    summary: str,
    *,
    patch_bytes: int,
    started: float,
    failures: Sequence[Failure] = (),
    applied_files: Iterable[str] = (),
    hunk_offsets: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Assemble the result dict.

    Shape: ``{ok, code, summary, failures: [failure item], applied_files: [sorted paths],
    hunk_offsets: [{path, hunk_index, expected_start_line, applied_start_line, offset}],
    metrics: {patch_bytes, applied_file_count, failure_count, edit_latency_ms}}``.
    ``ok`` is true only for ``PATCH_APPLIED``. ``hunk_offsets`` (ours) lists the unified
    hunks of written files that applied away from their declared line. ``revision_token`` is
    added by the caller, which owns the workspace's revision counter.

    Args:
        started: ``time.perf_counter()`` when the call began; ``edit_latency_ms`` is measured
            from it (the reference always reported 0).
    """
    applied = sorted(applied_files)
    return {
        "ok": code == codes.PATCH_APPLIED,
        "code": code,
        "summary": summary,
        "failures": [failure.to_dict() for failure in failures],
        "applied_files": applied,
        "hunk_offsets": list(hunk_offsets),
        "metrics": {
            "patch_bytes": patch_bytes,
            "applied_file_count": len(applied),
            "failure_count": len(failures),
            "edit_latency_ms": round((time.perf_counter() - started) * 1000),
        },
    }
