"""App templates and the project validation every new revision passes (contract section 8).

:func:`load_template` reads a starter project shipped under ``runtime/templates/<key>/``.
:func:`validate_project` checks a files map before it becomes a revision, for the builder
route and for a run's auto-apply alike; failures are one exception type,
:class:`ProjectValidationError`, carrying the HTTP status and the contract's ``detail``.

Not implemented: the curated dependency catalog (contract 8 "dependencies must respect a
curated pinned package catalog").
"""

from __future__ import annotations

import posixpath
import re
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from runtime.paths import PathPolicyError, normalize_path
from runtime.settings import Settings

COMPILE_FAILED = "BUILDER_COMPILE_FAILED"
POLICY_VIOLATION = "BUILDER_PATCH_POLICY_VIOLATION"
TEMPLATE_NOT_FOUND = "BUILDER_TEMPLATE_NOT_FOUND"

LOCKFILES = frozenset(
    {"package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lock"}
)
CODE_EXTENSIONS = (".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs")
# Resolution order for an extension-less relative import (contract 8).
RESOLVE_EXTENSIONS = (".tsx", ".ts", ".mts", ".cts", ".jsx", ".js", ".css")

_TEMPLATE_KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
# Static imports/re-exports (`import x from "./a"`, `import "./a.css"`, `export * from "./a"`),
# dynamic `import("./a")` and `require("./a")`. Only relative specifiers are checked.
_JS_IMPORT = re.compile(
    r"""(?:^|[;\s])(?:import|export)\s+(?:[^;'"]*?\s+from\s+)?["']([^"'\n]+)["']"""
    r"""|\b(?:import|require)\s*\(\s*["']([^"'\n]+)["']\s*\)""",
    re.MULTILINE,
)
_CSS_IMPORT = re.compile(r"""@import\s+(?:url\(\s*)?["']([^"'\n]+)["']""")


class ProjectValidationError(Exception):
    """A files map cannot become a revision; ``status`` and ``detail`` are the HTTP answer."""

    def __init__(self, status: int, detail: dict[str, Any]) -> None:
        super().__init__(detail.get("message", str(detail)))
        self.status = status
        self.detail = detail


class TemplateNotFound(LookupError):
    """No template of that key ships with Runwright."""

    def __init__(self, key: str) -> None:
        super().__init__(f"Unknown template: {key}")
        self.key = key

    def detail(self) -> dict[str, str]:
        """``{code, field, message}`` for a 400 answer."""
        return {"code": TEMPLATE_NOT_FOUND, "field": "template_key", "message": str(self)}


def template_keys() -> list[str]:
    """Keys of every shipped template, sorted."""
    root = resources.files("runtime").joinpath("templates")
    return sorted(entry.name for entry in root.iterdir() if entry.is_dir())


def load_template(key: str) -> dict[str, str]:
    """Return the template's files as ``{relative posix path: text}``, sorted by path.

    Raises:
        TemplateNotFound: ``key`` is not a shipped template.
    """
    if not _TEMPLATE_KEY.match(key):
        raise TemplateNotFound(key)
    root = resources.files("runtime").joinpath("templates").joinpath(key)
    if not root.is_dir():
        raise TemplateNotFound(key)
    files: dict[str, str] = {}
    _collect(root, "", files)
    return dict(sorted(files.items()))


def _collect(node: Traversable, prefix: str, out: dict[str, str]) -> None:
    for entry in node.iterdir():
        path = f"{prefix}{entry.name}"
        if entry.is_dir():
            if entry.name not in ("node_modules", "dist", "__pycache__"):
                _collect(entry, f"{path}/", out)
        else:
            out[path] = entry.read_text(encoding="utf-8")


def validate_project(files: dict[str, str], entry_file: str, settings: Settings) -> dict[str, str]:
    """Check a project against contract section 8 and return it with normalised paths.

    Checks, in order: every path passes :func:`runtime.paths.normalize_path`; file count,
    per-file size (lockfiles have their own limit) and total size; the entry file exists;
    relative imports in code and CSS files resolve.

    Args:
        files: path -> text, as a client or a workspace snapshot gives it.
        entry_file: the revision's entry module, e.g. ``"src/main.tsx"``.
        settings: for the ``builder_*`` limits.

    Returns:
        The files map keyed by normalised paths.

    Raises:
        ProjectValidationError: 400 ``BUILDER_PATCH_POLICY_VIOLATION`` (path policy, limits;
            ``field`` is ``"files"`` or ``"entry_file"``), 422 ``BUILDER_COMPILE_FAILED``
            (missing entry file, unresolved imports) with ``diagnostics``.
    """
    normalised: dict[str, str] = {}
    for raw_path, text in files.items():
        try:
            path = normalize_path(raw_path, field="files")
        except PathPolicyError as exc:
            raise ProjectValidationError(400, exc.detail()) from None
        if path in normalised:
            raise ProjectValidationError(400, _policy(f"Duplicate file path: {path}"))
        normalised[path] = text
    _check_limits(normalised, settings)
    try:
        entry = normalize_path(entry_file, field="entry_file")
    except PathPolicyError as exc:
        raise ProjectValidationError(400, exc.detail()) from None
    if entry not in normalised:
        raise ProjectValidationError(
            422,
            {
                "code": COMPILE_FAILED,
                "message": "Entry file does not exist in project",
                "diagnostics": [{"path": entry, "message": "Entry file is missing"}],
            },
        )
    diagnostics = unresolved_imports(normalised)
    if diagnostics:
        raise ProjectValidationError(
            422,
            {
                "code": COMPILE_FAILED,
                "message": "Project validation failed",
                "diagnostics": diagnostics,
            },
        )
    return normalised


def _check_limits(files: dict[str, str], settings: Settings) -> None:
    if len(files) > settings.builder_max_files:
        raise ProjectValidationError(
            400, _policy(f"Too many files: {len(files)} (limit {settings.builder_max_files})")
        )
    total = 0
    for path, text in files.items():
        size = len(text.encode("utf-8"))
        total += size
        name = posixpath.basename(path)
        limit = (
            settings.builder_max_lockfile_bytes
            if name in LOCKFILES
            else settings.builder_max_file_bytes
        )
        if size > limit:
            raise ProjectValidationError(
                400, _policy(f"File is too large: {path} ({size} bytes, limit {limit})")
            )
    if total > settings.builder_max_project_bytes:
        raise ProjectValidationError(
            400,
            _policy(
                f"Project is too large: {total} bytes (limit {settings.builder_max_project_bytes})"
            ),
        )


def _policy(message: str) -> dict[str, str]:
    return {"code": POLICY_VIOLATION, "message": message, "field": "files"}


def unresolved_imports(files: dict[str, str]) -> list[dict[str, str]]:
    """Diagnostics ``[{path, message}]`` for relative imports that name no file.

    A specifier resolves to the exact path, or that path plus one of
    :data:`RESOLVE_EXTENSIONS`, or ``<path>/index`` plus one of them. Bare specifiers
    (packages) are not checked here.
    """
    diagnostics = []
    for path in sorted(files):
        if path.endswith(CODE_EXTENSIONS):
            specs = [a or b for a, b in _JS_IMPORT.findall(files[path])]
        elif path.endswith(".css"):
            specs = _CSS_IMPORT.findall(files[path])
        else:
            continue
        for spec in specs:
            if spec.startswith(("./", "../")) and not _resolves(path, spec, files):
                diagnostics.append({"path": path, "message": f"Cannot resolve import '{spec}'"})
    return diagnostics


def _resolves(importer: str, spec: str, files: dict[str, str]) -> bool:
    clean = spec.split("?", 1)[0].split("#", 1)[0]
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(importer), clean))
    if joined.startswith("../") or joined == "..":
        return False
    candidates = [joined]
    candidates += [joined + ext for ext in RESOLVE_EXTENSIONS]
    candidates += [f"{joined}/index{ext}" for ext in RESOLVE_EXTENSIONS]
    return any(candidate in files for candidate in candidates)
