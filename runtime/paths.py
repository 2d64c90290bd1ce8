"""The one workspace path policy (contract section 7.5, tightened by docs/design.md 8.9).

Every path that names a file of an app — in a revision's files map, in a tool call, in a
patch — goes through :func:`normalize_path`. It never touches the filesystem; callers that
open files also use :func:`resolve_inside` so a symlink cannot lead out of the workspace.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

BLOCKED_PREFIXES = ("node_modules", ".git", ".next", "dist", "build", "coverage", "__pycache__")

ALLOWED_EXTENSIONS = frozenset(
    {
        ".html", ".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs", ".css",
        ".json", ".yaml", ".yml", ".lock", ".md", ".txt", ".svg", ".ico", ".png", ".jpg",
        ".jpeg", ".gif", ".webp",
    }
)  # fmt: skip

POLICY_CODE = "BUILDER_PATCH_POLICY_VIOLATION"

# Length limits in UTF-8 bytes (docs/design.md 8.9 / issue 9): a name longer than Linux's
# NAME_MAX (255) cannot be created on any common filesystem, so a revision holding one would
# fail every later run that materialises it; 1,024 keeps whole paths far below PATH_MAX
# (4,096) even under a deep data directory.
MAX_SEGMENT_BYTES = 255
MAX_PATH_BYTES = 1024


class PathPolicyError(ValueError):
    """A path breaks the workspace policy; ``message`` is the contract's text."""

    def __init__(self, message: str, *, field: str = "path") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = POLICY_CODE

    def detail(self) -> dict[str, str]:
        """The contract's detail object ``{code, message, field}``."""
        return {"code": self.code, "message": self.message, "field": self.field}


def normalize_path(raw: str, *, field: str = "path", check_extension: bool = True) -> str:
    """Normalise a workspace-relative path and enforce the policy.

    Backslashes become ``/``; ``.`` and empty segments are dropped. Returns e.g.
    ``"src/App.tsx"``.

    Args:
        raw: the path as given by a client or a model.
        field: the request field named in the error.
        check_extension: apply the extension allowlist (off only for deletions of files
            that already exist, which must stay removable).

    Raises:
        PathPolicyError: empty, holding a NUL or an unpaired surrogate, absolute,
            traversing, blocked, too long (a segment over
            :data:`MAX_SEGMENT_BYTES` or the whole path over :data:`MAX_PATH_BYTES`, UTF-8
            bytes) or with a disallowed extension.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise PathPolicyError("File path is required", field=field)
    if not _storable(raw):
        # A model's JSON can carry both; the OS refuses them (ValueError / UnicodeEncodeError
        # deep in the file call, with the server path's length in its text).
        raise PathPolicyError(
            "File path must be UTF-8 text without NUL characters or unpaired surrogates",
            field=field,
        )
    text = raw.strip().replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise PathPolicyError("Absolute paths are not allowed", field=field)
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise PathPolicyError("Path traversal is not allowed", field=field)
    if not parts:
        raise PathPolicyError("File path is required", field=field)
    if parts[0] in BLOCKED_PREFIXES:
        raise PathPolicyError(f"File path is blocked by policy: {parts[0]}/", field=field)
    if any(p == "__pycache__" for p in parts):
        raise PathPolicyError("File path is blocked by policy: __pycache__/", field=field)
    path = "/".join(parts)
    _check_length(path, parts, field)
    if check_extension:
        suffix = PurePosixPath(parts[-1]).suffix.lower()
        if suffix not in ALLOWED_EXTENSIONS:
            raise PathPolicyError(f"Unsupported file extension: {suffix or '(none)'}", field=field)
    return path


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_length(path: str, parts: list[str], field: str) -> None:
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise PathPolicyError(f"File path is too long (limit {MAX_PATH_BYTES} bytes)", field=field)
    for part in parts:
        if len(part.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
            raise PathPolicyError(
                f"File name is too long (limit {MAX_SEGMENT_BYTES} bytes per path segment)",
                field=field,
            )


def resolve_inside(root: Path, relative: str) -> Path:
    """Join a normalised relative path to ``root`` and prove the result stays inside it.

    Symlinks anywhere along the way are resolved first, so a link pointing outside the
    workspace is refused.

    Raises:
        PathPolicyError: the resolved path leaves ``root``.
    """
    base = root.resolve()
    target = (base / relative).resolve()
    if target != base and base not in target.parents:
        raise PathPolicyError("Path traversal is not allowed")
    return target
