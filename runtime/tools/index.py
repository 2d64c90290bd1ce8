"""Code navigation tools: workspace_index, search_code, collect_context (contract 7.3).

All three scan the listed workspace files in a worker thread. Files over
:data:`MAX_SCAN_BYTES` or that are not UTF-8 text are indexed by path and size only: their
content is neither searched nor outlined.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from runtime.settings import Settings
from runtime.textlines import MIN_RANGE_BYTES, line_window
from runtime.tools.context import ToolContext
from runtime.workspace import Workspace, WorkspaceFileNotFound, decode_text

# Generated bundles and data dumps are useless to search and slow to scan.
MAX_SCAN_BYTES = 1_000_000
PREVIEW_CHARS = 220
RECOMMENDED_SNIPPETS = 5  # the top snippets a prompt should include first

LANGUAGES = {
    ".py": "python", ".ts": "typescript", ".tsx": "typescript", ".mts": "typescript",
    ".cts": "typescript", ".js": "javascript", ".jsx": "javascript", ".mjs": "javascript",
    ".cjs": "javascript", ".json": "json", ".md": "markdown", ".css": "css", ".scss": "scss",
    ".html": "html", ".yaml": "yaml", ".yml": "yaml", ".sql": "sql", ".sh": "shell",
    ".bash": "shell",
}  # fmt: skip

_ID = r"([A-Za-z_$][\w$]*)"
_EXPORT = r"^\s*export\s+(?:default\s+)?"
_SYMBOLS = {
    "python": [
        (re.compile(rf"^\s*class\s+{_ID}"), "class"),
        (re.compile(rf"^\s*(?:async\s+)?def\s+{_ID}"), "function"),
    ],
    "typescript": [
        (re.compile(rf"{_EXPORT}(?:abstract\s+)?class\s+{_ID}"), "class"),
        (re.compile(rf"^\s*class\s+{_ID}"), "class"),
        (re.compile(rf"{_EXPORT}(?:async\s+)?function\s*\*?\s*{_ID}"), "function"),
        (re.compile(rf"^\s*(?:async\s+)?function\s*\*?\s*{_ID}"), "function"),
        (re.compile(rf"^\s*(?:export\s+)?const\s+{_ID}\s*=\s*(?:async\s*)?\("), "function"),
    ],
}  # fmt: skip
_SYMBOLS["javascript"] = _SYMBOLS["typescript"]


def language_of(path: str) -> str:
    """Language name by file extension (contract 7.3), ``text`` when unknown."""
    return LANGUAGES.get(PurePosixPath(path).suffix.lower(), "text")


def symbol_outline(text: str, language: str) -> list[dict[str, Any]]:
    """``[{name, kind, line}]`` from line regexes: Python ``class``/``def``; TS/JS classes,
    functions and ``const X = (`` arrows. Kinds are ``class`` or ``function``."""
    patterns = _SYMBOLS.get(language)
    if not patterns:
        return []
    found = []
    for number, line in enumerate(text.split("\n"), start=1):
        for pattern, kind in patterns:
            match = pattern.match(line)
            if match:
                found.append({"name": match.group(1), "kind": kind, "line": number})
                break
    return found


def _scan(ws: Workspace) -> Iterator[tuple[str, bytes, str | None]]:
    for rel in ws.list_files():
        try:
            data = ws.read_bytes(rel, check_extension=False)
        except WorkspaceFileNotFound:
            continue  # removed since listing
        text = decode_text(data) if len(data) <= MAX_SCAN_BYTES else None
        yield rel, data, text


def _index(ws: Workspace, query: str, limit: int, max_symbols: int) -> dict[str, Any]:
    needle = query.strip().lower()
    rows: list[dict[str, Any]] = []
    total_size = 0
    for rel, data, text in _scan(ws):
        total_size += len(data)
        language = language_of(rel)
        symbols = symbol_outline(text, language) if text is not None else []
        score = 0
        if needle:
            score += 4 if needle in rel.lower() else 0
            score += 2 if text is not None and needle in text.lower() else 0
            score += 3 if any(needle in s["name"].lower() for s in symbols) else 0
            if score == 0:
                continue
        rows.append(
            {
                "path": rel,
                "size_bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "language": language,
                "symbol_outline": symbols[:max_symbols],
                "score": score,
            }
        )
    rows.sort(key=lambda row: (-row["score"], row["path"]))
    return {"total_files": len(rows), "total_size_bytes": total_size, "files": rows[:limit]}


def _search(ws: Workspace, query: str, max_results: int) -> tuple[list[dict], dict[str, str]]:
    needle = query.lower()
    matches: list[dict[str, Any]] = []
    texts: dict[str, str] = {}
    for rel, _, text in _scan(ws):
        if text is None:
            continue
        for number, line in enumerate(text.split("\n"), start=1):
            if needle in line.lower():
                texts[rel] = text
                preview = line.strip()[:PREVIEW_CHARS]
                matches.append({"path": rel, "line": number, "preview": preview})
                if len(matches) >= max_results:
                    return matches, texts
    return matches, texts


async def workspace_index(
    args: dict[str, Any], ctx: ToolContext, settings: Settings
) -> dict[str, Any]:
    """``{sandbox_id, query, total_files, total_size_bytes, files: [{path, size_bytes,
    sha256, language, symbol_outline, score}], revision_token}``.

    With a query: score +4 path contains, +2 content contains, +3 a symbol contains
    (case-insensitive); score-0 files dropped; sorted by score desc then path;
    ``total_files`` counts matches before ``limit``; ``total_size_bytes`` sums all files.
    """
    ws = ctx.workspace
    query = args["query"] or ""
    result = await asyncio.to_thread(_index, ws, query, args["limit"], args["max_symbols_per_file"])
    return {
        "sandbox_id": ws.sandbox_id,
        "query": query,
        **result,
        "revision_token": ws.revision_token,
    }


async def search_code(args: dict[str, Any], ctx: ToolContext, settings: Settings) -> dict[str, Any]:
    """``{sandbox_id, query, matches: [{path, line, preview}], revision_token}``: a
    case-insensitive substring search per line, files in path order."""
    ws = ctx.workspace
    matches, _ = await asyncio.to_thread(_search, ws, args["query"], args["max_results"])
    return {
        "sandbox_id": ws.sandbox_id,
        "query": args["query"],
        "matches": matches,
        "revision_token": ws.revision_token,
    }


async def collect_context(
    args: dict[str, Any], ctx: ToolContext, settings: Settings
) -> dict[str, Any]:
    """Numbered snippets around search hits, within a byte budget.

    Returns ``{query, snippets: [{path, line, score, content, size_bytes,
    recommended_for_prompt}], snippet_count, consumed_bytes, max_total_bytes, compacted}``.
    Hits come from the code search (up to ``max(20, 4 * max_snippets)``); a hit already
    inside an earlier snippet's window is skipped (a stricter form of the contract's
    (path, line) de-duplication). Collection stops at ``max_snippets``, at the budget, or
    when fewer than 256 bytes remain; ``compacted`` says something was cut or left out.
    The first five snippets are ``recommended_for_prompt``.
    """
    query, max_snippets, budget = args["query"], args["max_snippets"], args["max_total_bytes"]
    hits, texts = await asyncio.to_thread(_search, ctx.workspace, query, max(20, 4 * max_snippets))
    snippets: list[dict[str, Any]] = []
    covered: dict[str, list[tuple[int, int]]] = {}
    consumed, compacted = 0, False
    for hit in hits:
        path, line = hit["path"], hit["line"]
        if any(lo <= line <= hi for lo, hi in covered.get(path, [])):
            continue
        remaining = budget - consumed
        if len(snippets) >= max_snippets or remaining < MIN_RANGE_BYTES:
            compacted = True
            break
        window = line_window(
            texts[path],
            start_line=line,
            context_before=args["context_before"],
            context_after=args["context_after"],
            max_bytes=remaining,
            with_line_numbers=True,
        )
        size = len(window.content.encode("utf-8"))
        covered.setdefault(path, []).append((window.start_line, window.end_line))
        compacted = compacted or window.truncated
        index = len(snippets)
        snippets.append(
            {
                "path": path,
                "line": line,
                "score": max(1, 100 - index),
                "content": window.content,
                "size_bytes": size,
                "recommended_for_prompt": index < RECOMMENDED_SNIPPETS,
            }
        )
        consumed += size
    return {
        "query": query,
        "snippets": snippets,
        "snippet_count": len(snippets),
        "consumed_bytes": consumed,
        "max_total_bytes": budget,
        "compacted": compacted,
    }
