"""The apply_patch tool (contract 7.3 / 7.4): a thin adapter over :mod:`runtime.patching`.

The patch engine owns parsing, applying, the runtime result and the tool envelope
(``refresh_windows``, ``verification_plan``). This module adds what only the toolpack
knows: the workspace's revision token, and the optional verification runs.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping
from typing import Any

from runtime.patching import codes as patch_codes
from runtime.patching.apply import parse_patch, size_refusal, stale_preconditions
from runtime.paths import normalize_path
from runtime.settings import Settings
from runtime.tools.commands import verification_runs
from runtime.tools.context import ToolContext
from runtime.tools.errors import ToolError

_SHA_PREFIX = "sha256:"


def _expected_hashes(raw: object) -> dict[str, str] | None:
    # Values may be prefixed "sha256:" (contract 7.3); the engine compares bare hex.
    if not isinstance(raw, dict) or not raw:
        return None
    hashes = {}
    for path, value in raw.items():
        text = str(value).strip()
        if text.lower().startswith(_SHA_PREFIX):
            text = text[len(_SHA_PREFIX) :]
        hashes[str(path)] = text.lower()
    return hashes


def check_patch_arguments(args: dict[str, Any], settings: Settings) -> None:
    """Argument rules of apply_patch as an approver's edited arguments are checked: the
    patch fits ``max_patch_bytes`` (:func:`runtime.patching.apply.size_refusal`) and every
    file it names passes the path policy (a deleted one without the extension check). The
    patch engine applies these same functions when the patch is applied, answering with its
    own envelope (failures, refresh windows), so the tool does not call this first.

    Raises:
        ToolError: ``PATCH_TOO_LARGE`` (field ``patch``).
        PathPolicyError: a named file breaks the policy (field ``patch``).
    """
    text = str(args["patch"])
    too_large = size_refusal(text, settings.max_patch_bytes)
    if too_large is not None:
        raise ToolError(too_large, code=patch_codes.PATCH_TOO_LARGE, field="patch")
    for op in parse_patch(text, int(args["strip"])):
        for path in (op.path, op.move_to):
            if path:
                normalize_path(path, field="patch", check_extension=op.kind != "delete")
    for path in _expected_hashes(args["expected_hashes"]) or {}:
        normalize_path(path, field="expected_hashes", check_extension=False)


def check_patch_preconditions(args: dict[str, Any], files: Mapping[str, str]) -> None:
    """The ``expected_hashes`` of apply_patch's bound ``args`` against ``files``, the
    workspace as ``{path: text}`` the call will run on (a paused run's stored workspace,
    which its resume restores before the approved call runs): the patch engine's own rule
    (:func:`runtime.patching.apply.stale_preconditions`), applied before the call runs.
    Keys must already have passed :func:`check_patch_arguments`.

    Raises:
        ToolError: ``PATCH_PRECONDITION_FAILED`` (field ``expected_hashes``) naming the
            files that are missing or differ.
    """
    hashes = _expected_hashes(args["expected_hashes"])
    if not hashes:
        return
    stored = {normalize_path(p, check_extension=False): t.encode() for p, t in files.items()}
    stale = stale_preconditions(hashes, stored.get)
    if stale:
        names = ", ".join(failure.path for failure in stale)
        raise ToolError(
            f"expected_hashes do not match the workspace for: {names}",
            code=patch_codes.PATCH_PRECONDITION_FAILED,
            field="expected_hashes",
        )


async def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    # The engine's functions are blocking file I/O: run them off the loop.
    result = await asyncio.to_thread(fn, *args, **kwargs)
    return await result if inspect.isawaitable(result) else result


async def apply_patch(args: dict[str, Any], ctx: ToolContext, settings: Settings) -> dict[str, Any]:
    """Apply a unified diff or ``*** Begin Patch`` text to the workspace.

    Returns the patch engine's tool envelope: on failure ``{error, code, result,
    refresh_windows, failures}``; on success the runtime result plus ``verification_plan``
    (and ``verification_runs`` when ``auto_verify_patch``). ``sandbox_id`` and
    ``revision_token`` (the workspace's, bumped when any file was written or deleted) are
    added at the top level and to the runtime result.

    Raises:
        ToolError: the patch engine is not installed.
    """
    try:
        from runtime import patching
    except ImportError:
        patching = None  # type: ignore[assignment]
    apply_fn = getattr(patching, "apply_patch", None)
    envelope_fn = getattr(patching, "tool_envelope", None)
    if apply_fn is None or envelope_fn is None:  # lands separately: fail the tool, not the run
        raise ToolError("Patch engine is unavailable")
    ws = ctx.workspace
    result = await _call(
        apply_fn,
        ws.root,
        args["patch"],
        strip=args["strip"],
        atomic=args["atomic"],
        allow_create=args["allow_create"],
        allow_delete=args["allow_delete"],
        expected_hashes=_expected_hashes(args["expected_hashes"]),
        max_patch_bytes=settings.max_patch_bytes,
    )
    # A partial apply writes files too, so bump on any applied file, not only on ok.
    if isinstance(result, dict):
        result["revision_token"] = ws.bump() if result.get("applied_files") else ws.revision_token
    output = await _call(envelope_fn, result, ws.root, settings.read_range_max_bytes)
    if isinstance(output, dict) and isinstance(result, dict):
        output.setdefault("sandbox_id", ws.sandbox_id)
        output.setdefault("revision_token", result["revision_token"])
    if settings.auto_verify_patch and isinstance(output, dict) and not output.get("error"):
        output["verification_runs"] = await verification_runs(ctx, settings)
    return output
