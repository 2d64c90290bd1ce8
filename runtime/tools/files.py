"""File tools: list, read, range read, write (legacy), rename, delete, snapshot (contract 7.3).

Each handler takes the bound arguments, the server-side :class:`ToolContext` and the
settings, and runs its file I/O in a worker thread. Reads and writes go through the full
path policy (contract 7.5, which also keeps e.g. ``.env`` unreadable); deletes and rename
sources skip only the extension check so any existing file stays removable.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from runtime.patching import codes as patch_codes
from runtime.patching.apply import size_refusal
from runtime.paths import normalize_path
from runtime.settings import Settings
from runtime.textlines import line_window, range_result
from runtime.tools.context import ToolContext
from runtime.tools.errors import ToolError
from runtime.workspace import Workspace, decode_text

LEGACY_WRITE_DISABLED = "LEGACY_WRITE_FILE_DISABLED"


def check_path_arguments(args: dict[str, Any], settings: Settings) -> None:
    """Argument rules of a tool that reads or writes ``path``: the full path policy
    (:func:`runtime.paths.normalize_path`; the workspace applies it again on access).

    Raises:
        PathPolicyError: ``path`` breaks the policy.
    """
    normalize_path(args["path"])


def check_write_arguments(args: dict[str, Any], settings: Settings) -> None:
    """Argument rules of write_file, applied before it writes and to an approver's edited
    arguments: the tool is switched on (``enable_legacy_write_file``), ``path`` passes the
    full path policy and ``content`` fits the size limit of what a tool writes
    (``max_patch_bytes``, :func:`runtime.patching.apply.size_refusal`: a whole-file write
    is held to what a patch writing the file may hold).

    Raises:
        ToolError: ``LEGACY_WRITE_FILE_DISABLED``; ``PATCH_TOO_LARGE`` (field ``content``).
        PathPolicyError: ``path`` breaks the policy.
    """
    if not settings.enable_legacy_write_file:
        raise ToolError(
            "coding_agent_write_file is deprecated and disabled; use coding_agent_apply_patch",
            code=LEGACY_WRITE_DISABLED,
        )
    check_path_arguments(args, settings)
    too_large = size_refusal(str(args["content"]), settings.max_patch_bytes, what="content")
    if too_large is not None:
        raise ToolError(too_large, code=patch_codes.PATCH_TOO_LARGE, field="content")


def check_rename_arguments(args: dict[str, Any], settings: Settings) -> None:
    """Argument rules of rename_file: ``from_path`` passes the path policy without the
    extension check (any existing file may move), ``to_path`` the full policy.

    Raises:
        PathPolicyError: with the field at fault.
    """
    normalize_path(args["from_path"], field="from_path", check_extension=False)
    normalize_path(args["to_path"], field="to_path")


def check_delete_arguments(args: dict[str, Any], settings: Settings) -> None:
    """Argument rules of delete_file: ``path`` passes the path policy without the
    extension check (any existing file stays removable).

    Raises:
        PathPolicyError: ``path`` breaks the policy.
    """
    normalize_path(args["path"], check_extension=False)


def read_text(ws: Workspace, path: str) -> tuple[str, bytes, str]:
    """``(normalised path, bytes, text)`` of a workspace file, through the full path policy.

    Raises:
        ToolError: the file is not UTF-8 text; PathPolicyError / OSError from the read.
    """
    data = ws.read_bytes(path)
    rel = normalize_path(path)
    text = decode_text(data)
    if text is None:
        raise ToolError(f"File is not UTF-8 text: {rel}", field="path")
    return rel, data, text


async def list_files(args: dict[str, Any], ctx: ToolContext, settings: Settings) -> dict[str, Any]:
    """``{sandbox_id, count, paths, revision_token}``; at most ``limit`` paths."""
    ws = ctx.workspace
    paths = await asyncio.to_thread(ws.list_files)
    paths = paths[: args["limit"]]
    return {
        "sandbox_id": ws.sandbox_id,
        "count": len(paths),
        "paths": paths,
        "revision_token": ws.revision_token,
    }


async def read_file(args: dict[str, Any], ctx: ToolContext, settings: Settings) -> dict[str, Any]:
    """``{sandbox_id, path, content, size_bytes, sha256, revision_token}``."""
    ws = ctx.workspace
    rel, data, text = await asyncio.to_thread(read_text, ws, args["path"])
    return {
        "sandbox_id": ws.sandbox_id,
        "path": rel,
        "content": text,
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "revision_token": ws.revision_token,
    }


async def read_file_range(
    args: dict[str, Any], ctx: ToolContext, settings: Settings
) -> dict[str, Any]:
    """``{sandbox_id, path, start_line, end_line, content, line_count, truncated,
    size_bytes, sha256, revision_token}``; ``size_bytes`` and ``sha256`` describe the whole
    file, the other fields the window (:func:`runtime.textlines.line_window`)."""
    ws = ctx.workspace
    rel, data, text = await asyncio.to_thread(read_text, ws, args["path"])
    window = line_window(
        text,
        start_line=args["start_line"],
        end_line=args["end_line"],
        context_before=args["context_before"],
        context_after=args["context_after"],
        max_bytes=args["max_bytes"],
        with_line_numbers=args["with_line_numbers"],
    )
    return {
        "sandbox_id": ws.sandbox_id,
        "path": rel,
        **range_result(data, window),
        "revision_token": ws.revision_token,
    }


async def write_file(args: dict[str, Any], ctx: ToolContext, settings: Settings) -> dict[str, Any]:
    """Deprecated whole-file write; disabled unless ``enable_legacy_write_file``.

    Returns ``{sandbox_id, path, status: "written", revision_token}``.

    Raises:
        ToolError, PathPolicyError: see :func:`check_write_arguments`.
    """
    check_write_arguments(args, settings)
    ws = ctx.workspace
    token = await asyncio.to_thread(ws.write_text, args["path"], args["content"])
    rel = normalize_path(args["path"])
    return {"sandbox_id": ws.sandbox_id, "path": rel, "status": "written", "revision_token": token}


async def rename_file(args: dict[str, Any], ctx: ToolContext, settings: Settings) -> dict[str, Any]:
    """``{sandbox_id, from_path, to_path, status: "renamed", revision_token}``; fails when
    the source is missing or the target exists."""
    ws = ctx.workspace
    token = await asyncio.to_thread(ws.rename, args["from_path"], args["to_path"])
    return {
        "sandbox_id": ws.sandbox_id,
        "from_path": normalize_path(args["from_path"], check_extension=False),
        "to_path": normalize_path(args["to_path"]),
        "status": "renamed",
        "revision_token": token,
    }


async def delete_file(args: dict[str, Any], ctx: ToolContext, settings: Settings) -> dict[str, Any]:
    """``{sandbox_id, path, status: "deleted", revision_token}``; a missing file is not an
    error."""
    ws = ctx.workspace
    await asyncio.to_thread(ws.delete, args["path"])
    rel = normalize_path(args["path"], check_extension=False)
    return {
        "sandbox_id": ws.sandbox_id,
        "path": rel,
        "status": "deleted",
        "revision_token": ws.revision_token,
    }


async def snapshot_files(
    args: dict[str, Any], ctx: ToolContext, settings: Settings
) -> dict[str, Any]:
    """``{sandbox_id, files: {path: content}, file_count}`` (text files only)."""
    ws = ctx.workspace
    files = await asyncio.to_thread(ws.snapshot)
    return {"sandbox_id": ws.sandbox_id, "files": files, "file_count": len(files)}
