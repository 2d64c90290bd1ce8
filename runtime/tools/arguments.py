"""Tool argument normalisation: the one place that reads a model's arguments (contract 7.2).

Models send arguments in many shapes. This module accepts them all and binds them to a
tool's declared :class:`Field` list:

- the raw arguments may be a dict, a JSON string, fenced JSON, a truncated JSON string
  (closed and repaired), or loosely quoted ``key: value`` / ``key="value"`` text;
- wrapper keys (:data:`WRAPPER_KEYS`) are unwrapped, their string values parsed the same way;
- each field is looked up by its name and aliases, then in nested objects up to depth 5;
  an alias whose value is an object (``{"source": {"path": ...}}``) is searched inside;
- server-side identity keys (:data:`IGNORED_KEYS`: ``run_id``, ``tenant_id``, ``context``
  ...) are never read, so a model cannot redirect a tool (docs/design.md 8.7).

Only declared fields come out of :func:`bind_arguments`; nothing else in the arguments is
ever seen by a tool.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from runtime.tools.errors import VALIDATION_FAILED, ToolError

WRAPPER_KEYS = ("args", "input", "parameters", "payload", "data", "arguments", "value")
IGNORED_KEYS = frozenset(
    {
        "run_id", "runId", "tenant_id", "tenantId", "app_id", "appId", "user_id", "userId",
        "context", "sandbox_id", "sandboxId", "workspace_id", "workspaceId", "session_id",
        "organization_id", "org_id", "actor", "principal",
    }
)  # fmt: skip
MAX_DEPTH = 5

PATH_ALIASES = (
    "path", "file_path", "filePath", "filepath", "file", "target_path", "targetPath",
    "relativePath", "relative_path", "file_name", "fileName", "filename", "target_file",
)  # fmt: skip
FROM_ALIASES = (
    "from_path", "fromPath", "source_path", "sourcePath", "old_path", "oldPath", "from",
    "source", "src", "original_path", "originalPath",
)  # fmt: skip
TO_ALIASES = (
    "to_path", "toPath", "destination_path", "destinationPath", "dest_path", "destPath",
    "new_path", "newPath", "to", "destination", "dest", "target", "target_path", "targetPath",
)  # fmt: skip
CONTENT_ALIASES = (
    "content", "text", "body", "code", "file_content", "fileContent", "contents",
    "new_content", "newContent",
)  # fmt: skip
PATCH_ALIASES = ("patch", "diff", "unified_diff", "unifiedDiff", "patch_text", "patchText")
OLD_TEXT_ALIASES = ("old_string", "oldString", "oldText", "old", "search", "find", "original")
NEW_TEXT_ALIASES = ("new_string", "newString", "newText", "new", "replace", "replacement")

Kind = Literal["str", "text", "int", "bool", "object", "command"]


@dataclass(frozen=True)
class Field:
    """One declared tool input.

    Attributes:
        name: canonical name (the JSON Schema property).
        kind: value type; ints and bools are coerced from strings, ``command`` accepts any
            value (the command tool checks its type); ``str`` is a non-blank string,
            ``text`` any string (empty included: a replacement text may be nothing).
        aliases: other accepted keys.
        inner: extra keys searched inside an alias whose value is an object.
        required: must be present (``str``: non-blank).
        default: value when absent.
        minimum, maximum: clamp bounds for ints.
        description: shown to the model.
    """

    name: str
    kind: Kind = "str"
    aliases: tuple[str, ...] = ()
    inner: tuple[str, ...] = ()
    required: bool = False
    default: Any = None
    minimum: int | None = None
    maximum: int | None = None
    description: str = ""

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.name, *[a for a in self.aliases if a != self.name])


def bind_arguments(fields: Sequence[Field], raw: object) -> dict[str, Any]:
    """Bind raw model arguments to ``fields``: ``{name: value}`` with defaults and clamps.

    Raises:
        ToolError: code ``TOOL_INPUT_VALIDATION_FAILED``, message ``Missing required fields:
            a, b`` and extras ``fields`` / ``received_keys`` (both sorted).
    """
    args = parse_arguments(raw)
    values: dict[str, Any] = {}
    missing: list[str] = []
    for field in fields:
        found, value = _find(args, field, 0)
        if not found:
            if field.required:
                missing.append(field.name)
            values[field.name] = field.default
            continue
        if field.kind == "int":
            value = _clamp(value, field)
        values[field.name] = value
    if missing:
        names = sorted(missing)
        raise ToolError(
            f"Missing required fields: {', '.join(names)}",
            code=VALIDATION_FAILED,
            extra={"fields": names, "received_keys": sorted(str(k) for k in args)},
        )
    return values


def parse_arguments(raw: object) -> dict[str, Any]:
    """The argument object from a dict or text (JSON, fenced, truncated or loose); ``{}``
    when nothing object-like can be read."""
    if isinstance(raw, Mapping):
        return dict(raw)
    if isinstance(raw, str):
        return parse_text(raw) or {}
    return {}


def parse_text(text: str) -> dict[str, Any] | None:
    """Parse an object from model text, or None. Tries, in order: JSON (also doubly
    encoded), the body of a ``` fence, repaired truncated JSON, loose key/value pairs."""
    body = text.strip()
    fence = re.match(r"^```[\w-]*\s*(.*?)\s*(?:```)?$", body, re.DOTALL)
    if fence:
        body = fence.group(1).strip()
    if not body:
        return None
    try:
        value = json.loads(body)
    except ValueError:
        value = None
    if isinstance(value, str):
        return parse_text(value) if value.strip() != body else None
    if isinstance(value, dict):
        return value
    if value is None and body.startswith("{"):
        repaired = _repair_json(body)
        if repaired is not None:
            return repaired
    return _loose_pairs(body)


# ---- lookup ------------------------------------------------------------------------------


def _find(obj: Mapping[str, Any], field: Field, depth: int) -> tuple[bool, Any]:
    for key in field.keys:
        if key in IGNORED_KEYS or key not in obj:
            continue
        ok, value = _accept(field, obj[key])
        if ok:
            return True, value
        nested = _as_object(obj[key], parse=False)
        if field.kind == "str" and nested is not None and depth < MAX_DEPTH:
            # {"source": {"path": "a"}}: the alias names the role, the object holds the value.
            inner = replace(field, aliases=field.aliases + field.inner)
            found, value = _find(nested, inner, depth + 1)
            if found:
                return True, value
    if depth >= MAX_DEPTH:
        return False, None
    wrappers = [k for k in WRAPPER_KEYS if k in obj]
    others = [k for k in obj if k not in WRAPPER_KEYS and k not in IGNORED_KEYS]
    for key in (*wrappers, *others):
        if not isinstance(key, str):
            continue
        child = _as_object(obj[key], parse=key in WRAPPER_KEYS)
        if child is not None:
            found, value = _find(child, field, depth + 1)
            if found:
                return True, value
    return False, None


def _as_object(value: object, *, parse: bool) -> Mapping[str, Any] | None:
    if isinstance(value, Mapping):
        return value
    if parse and isinstance(value, str):
        return parse_text(value)
    return None


def _accept(field: Field, value: object) -> tuple[bool, Any]:
    if value is None:
        return False, None
    if field.kind == "str":
        return (True, value) if isinstance(value, str) and value.strip() else (False, None)
    if field.kind == "text":
        return (True, value) if isinstance(value, str) else (False, None)
    if field.kind == "int":
        if isinstance(value, bool):
            return False, None
        if isinstance(value, int | float):
            return True, int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return True, int(value)
        return False, None
    if field.kind == "bool":
        if isinstance(value, bool):
            return True, value
        if isinstance(value, int | float):
            return True, bool(value)
        lowered = str(value).strip().lower()
        if lowered in ("true", "yes", "1", "on"):
            return True, True
        if lowered in ("false", "no", "0", "off"):
            return True, False
        return False, None
    if field.kind == "object":
        obj = _as_object(value, parse=True)
        return (True, dict(obj)) if obj is not None else (False, None)
    return True, value  # "command": type-checked by the command tool


def _clamp(value: int, field: Field) -> int:
    if field.minimum is not None:
        value = max(field.minimum, value)
    if field.maximum is not None:
        value = min(field.maximum, value)
    return value


# ---- lenient text parsing ------------------------------------------------------------------


def _repair_json(text: str) -> dict[str, Any] | None:
    """Close a truncated JSON object: finish an open string, drop a dangling key or comma,
    and close open brackets. Models hit output limits mid-argument (contract 10)."""
    closers: list[str] = []
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            closers.append("}" if ch == "{" else "]")
        elif ch in "}]" and closers:
            closers.pop()
    body = text[:-1] if escaped else text
    if in_string:
        body += '"'
    tail = "".join(reversed(closers))
    candidates = [body, re.sub(r',?\s*"(?:[^"\\]|\\.)*"\s*:?\s*$', "", body)]
    for candidate in candidates:
        candidate = re.sub(r"[,:]\s*$", "", candidate.rstrip())
        try:
            value = json.loads(candidate + tail)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


_PAIR = re.compile(
    r"""["']?(?P<key>[A-Za-z_][\w-]*)["']?\s*[:=]\s*"""
    r"""(?P<value>"(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|[^,\n}]*)"""
)


def _loose_pairs(text: str) -> dict[str, Any] | None:
    """``key: value`` / ``key="value"`` pairs separated by commas or newlines, or None when
    the text does not start like that (so prose and diffs are not misread)."""
    body = text.strip().lstrip("{").strip()
    if not _PAIR.match(body):
        return None
    pairs: dict[str, Any] = {}
    for match in _PAIR.finditer(body):
        raw = match.group("value").strip()
        if raw[:1] == '"':
            closed = raw if len(raw) > 1 and raw.endswith('"') else raw + '"'
            try:
                value: Any = json.loads(closed)
            except ValueError:
                value = closed[1:-1]
        elif raw[:1] == "'":
            value = raw[1:-1] if len(raw) > 1 and raw.endswith("'") else raw[1:]
        else:
            value = raw.rstrip("}").strip()
        pairs.setdefault(match.group("key"), value)
    return pairs or None
