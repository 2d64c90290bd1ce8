"""tool.failed enrichment (contract 3.4): the one place deciding whether a tool output is a
failure and what its diagnostics say."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def tool_failure_diagnostics(output: object) -> list[dict[str, Any]] | None:
    """Diagnostics for a failed tool output, or None when ``output`` is not a failure.

    A failure is a mapping with a truthy ``error``. The single diagnostic holds
    ``message`` (the error text), ``code`` and ``field`` when present, and for patch
    failures ``patch_failure_count`` (non-empty ``failures``), ``recommended_refresh``
    ``{path, start_line, end_line}`` (from the first failure, when its window is an object)
    and ``patch_code`` (a truthy ``result.code``).

    Returns:
        ``[{message, code?, field?, patch_failure_count?, recommended_refresh?,
        patch_code?}]`` or None.
    """
    if not isinstance(output, Mapping) or not output.get("error"):
        return None
    diagnostic: dict[str, Any] = {"message": str(output["error"])}
    for key in ("code", "field"):
        if output.get(key) is not None:
            diagnostic[key] = output[key]
    failures = output.get("failures")
    if isinstance(failures, list) and failures:
        diagnostic["patch_failure_count"] = len(failures)
        first = failures[0]
        window = first.get("recommended_refresh") if isinstance(first, Mapping) else None
        if isinstance(window, Mapping):
            diagnostic["recommended_refresh"] = {
                "path": first.get("path"),
                "start_line": window.get("start_line"),
                "end_line": window.get("end_line"),
            }
    result = output.get("result")
    if isinstance(result, Mapping) and result.get("code"):
        diagnostic["patch_code"] = result["code"]
    return [diagnostic]
