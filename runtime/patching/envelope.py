"""Tool-level envelopes around the runtime result (contract 7.4), kept next to the engine so
the rules for refresh windows and verification plans live in one place."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from runtime.patching import codes
from runtime.paths import PathPolicyError, normalize_path, resolve_inside
from runtime.textlines import line_window, range_result

MAX_REFRESH_WINDOWS = 4
REFRESH_BYTE_CEILING = 16_000
MAX_CHANGED_PATHS = 40

TYPECHECK = "npm run typecheck"
TESTS = "npm run test -- --run --passWithNoTests"
PYTEST = "pytest -q"
BUILD = "npm run build"
_COMMAND_ORDER = (TYPECHECK, TESTS, PYTEST, BUILD)
_COMMANDS_BY_SUFFIX = {
    ".ts": (TYPECHECK, TESTS),
    ".tsx": (TYPECHECK, TESTS, BUILD),
    ".js": (TYPECHECK, TESTS),
    ".jsx": (TYPECHECK, TESTS, BUILD),
    ".py": (PYTEST,),
    ".css": (BUILD,),
    ".scss": (BUILD,),
}


def tool_envelope(
    result: dict[str, Any], root: Path, read_range_max_bytes: int = 12_000
) -> dict[str, Any]:
    """Wrap a runtime result for the model (contract 7.4).

    Success: the result plus ``verification_plan`` (:func:`verification_plan`). Failure:
    ``{error, code, result, refresh_windows, failures}`` where ``refresh_windows`` holds
    numbered reads (``{path, start_line, end_line, content, line_count, truncated,
    size_bytes, sha256}``) of the recommended windows of the first 4 failures that name a
    path, capped at ``min(read_range_max_bytes, 16000)`` bytes each; unreadable windows are
    skipped. A partial apply (ours) also carries ``verification_plan`` for the files it did
    write. The caller adds ``sandbox_id`` / ``revision_token`` / ``verification_runs``.

    Args:
        result: what :func:`runtime.patching.apply_patch` returned.
        root: the workspace the windows are read from.
        read_range_max_bytes: ``APPS_CODING_AGENT_READ_RANGE_MAX_BYTES``.
    """
    if result.get("ok"):
        return {**result, "verification_plan": verification_plan(result["applied_files"])}
    failures = list(result.get("failures", []))
    envelope: dict[str, Any] = {
        "error": result.get("summary") or "Patch apply failed",
        "code": result.get("code") or codes.PATCH_HUNK_MISMATCH,
        "result": result,
        "refresh_windows": refresh_windows(
            root, failures, min(read_range_max_bytes, REFRESH_BYTE_CEILING)
        ),
        "failures": failures,
    }
    if result.get("applied_files"):
        envelope["verification_plan"] = verification_plan(result["applied_files"])
    return envelope


def refresh_windows(
    root: Path, failures: Iterable[dict[str, Any]], max_bytes: int
) -> list[dict[str, Any]]:
    """Numbered reads for the first 4 failures with a path and a recommended window.

    Each is ``{path, **read_file_range fields}`` (:func:`runtime.textlines.range_result`);
    bytes that are not UTF-8 are kept as surrogates, as the patch engine reads them.
    """
    chosen = [f for f in failures if f.get("path") and f.get("recommended_refresh")]
    windows: list[dict[str, Any]] = []
    for failure in chosen[:MAX_REFRESH_WINDOWS]:
        window = failure["recommended_refresh"]
        try:
            relative = normalize_path(failure["path"], check_extension=False)
            data = resolve_inside(root, relative).read_bytes()
            shown = line_window(
                data.decode("utf-8", "surrogateescape"),
                start_line=int(window["start_line"]),
                end_line=int(window["end_line"]),
                max_bytes=max_bytes,
                with_line_numbers=True,
            )
        except (OSError, PathPolicyError, KeyError, TypeError, ValueError):
            continue  # contract: unreadable windows are skipped
        windows.append({"path": relative, **range_result(data, shown)})
    return windows


def verification_plan(changed_paths: Iterable[str]) -> dict[str, Any]:
    """``{changed_paths (first 40), recommended_commands}`` (contract 7.4).

    Commands: typecheck and tests for ``.ts/.tsx/.js/.jsx``, ``pytest -q`` for ``.py``,
    build for ``.css/.scss/.tsx/.jsx``; in that fixed order, without repeats.
    """
    paths = list(changed_paths)
    wanted = {
        command
        for path in paths
        for command in _COMMANDS_BY_SUFFIX.get(PurePosixPath(path).suffix.lower(), ())
    }
    return {
        "changed_paths": paths[:MAX_CHANGED_PATHS],
        "recommended_commands": [command for command in _COMMAND_ORDER if command in wanted],
    }
