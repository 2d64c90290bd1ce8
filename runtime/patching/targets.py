"""Patch paths: the ``strip`` rule, git quoting, and the workspace policy.

The strip rule (ours, replacing the reference's "always strip, 0 means 1"; docs/design.md 8.9):
with ``strip=N`` (1..3) the first N components of a patch path are removed **only when the
first component is a git side prefix** ``a`` or ``b`` and more than N components exist;
any other path is used as written. ``strip=0`` never removes anything. So with the default
``strip=1``: ``a/src/App.tsx`` -> ``src/App.tsx``, ``src/App.tsx`` -> ``src/App.tsx``; with
``strip=2``: ``a/app/src/x.ts`` -> ``src/x.ts``. The rule applies to ``---``/``+++`` and
``diff --git`` paths and to Begin Patch paths, never to ``rename from``/``rename to`` (git
writes those without prefixes).

Every resulting path then goes through :func:`runtime.paths.normalize_path` and
:func:`runtime.paths.resolve_inside` (contract 7.5); no second policy lives here.
"""

from __future__ import annotations

from pathlib import Path

from runtime.paths import normalize_path, resolve_inside

GIT_SIDE_PREFIXES = frozenset({"a", "b"})
MAX_STRIP = 3

_C_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def strip_components(path: str, strip: int) -> str:
    """Apply the strip rule above to one patch path (backslashes count as ``/``)."""
    if strip <= 0:
        return path
    parts = path.replace("\\", "/").split("/")
    if parts[0] in GIT_SIDE_PREFIXES and len(parts) > strip:
        return "/".join(parts[strip:])
    return path


def unquote_git_path(text: str) -> tuple[str, str]:
    """Read one git C-quoted path from the start of ``text``.

    Returns ``(path, rest)``. Git quotes names with unusual bytes as ``"..."`` with C
    escapes and octal bytes (UTF-8); an unterminated quote yields the text as written.
    """
    out = bytearray()
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            return out.decode("utf-8", "surrogateescape"), text[i + 1 :]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            digits = text[i + 1 : i + 4]
            if len(digits) == 3 and all(c in "01234567" for c in digits):
                out.append(int(digits, 8) & 0xFF)
                i += 4
                continue
            out.append(_C_ESCAPES.get(nxt, ord(nxt) if ord(nxt) < 128 else 63))
            i += 2
            continue
        out.extend(ch.encode("utf-8", "surrogateescape"))
        i += 1
    return text, ""


def resolve_target(root: Path, raw: str, *, removal: bool = False) -> tuple[str, Path]:
    """Normalise a patch path under the workspace policy and locate it inside ``root``.

    Args:
        root: the workspace directory.
        raw: the path after the strip rule.
        removal: the file is being deleted (or renamed away); an existing file may then
            have any extension, so that files the policy would not create stay removable.

    Returns:
        ``(relative, absolute)``, e.g. ``("src/App.tsx", root/"src/App.tsx")``.

    Raises:
        runtime.paths.PathPolicyError: absolute, traversing, blocked, bad extension, or a
            symlink leading out of ``root``.
    """
    relative = normalize_path(raw, check_extension=False)
    absolute = resolve_inside(root, relative)
    if not (removal and absolute.is_file()):
        normalize_path(raw)
    return relative, absolute
