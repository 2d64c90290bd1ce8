"""Tool errors and their conversion into output envelopes (contract 7.2).

Tools never raise to the agent: :func:`error_envelope` turns any exception into the
failure convention ``{error, code, field?}``. This module is the one place for that mapping.
"""

from __future__ import annotations

from typing import Any

from runtime.paths import POLICY_CODE

EXECUTION_FAILED = "TOOL_EXECUTION_FAILED"
VALIDATION_FAILED = "TOOL_INPUT_VALIDATION_FAILED"


class ToolError(Exception):
    """A tool failed in an expected way; becomes ``{error: message, code, field?}``."""

    def __init__(
        self,
        message: str,
        *,
        code: str = EXECUTION_FAILED,
        field: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field
        self.extra = dict(extra or {})


class ToolPermissionError(ToolError, PermissionError):
    """An action the policy forbids (commands off the allowlist, foreign checkpoints)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message, code=POLICY_CODE, field=field)


def envelope(message: str, code: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    """Build a failure envelope ``{error, code, field?, **extra}``."""
    out: dict[str, Any] = {"error": message, "code": code}
    if field:
        out["field"] = field
    out.update(extra)
    return out


def error_envelope(exc: BaseException) -> dict[str, Any]:
    """Convert an exception into a tool failure envelope (contract 7.2).

    - :class:`ToolError` -> its message, code, field and extra keys;
    - anything with a ``detail()`` returning ``{code, message, field}`` (e.g.
      :class:`runtime.paths.PathPolicyError`) -> that detail (code defaults to
      ``TOOL_EXECUTION_FAILED``);
    - :class:`PermissionError` -> ``BUILDER_PATCH_POLICY_VIOLATION``;
    - anything else -> ``TOOL_EXECUTION_FAILED`` with ``str(exc)``.
    """
    if isinstance(exc, ToolError):
        return envelope(exc.message, exc.code, exc.field, **exc.extra)
    detail_fn = getattr(exc, "detail", None)
    if callable(detail_fn):
        try:
            detail = detail_fn()
        except Exception:  # a broken detail() must not hide the original error
            detail = None
        if isinstance(detail, dict) and detail.get("message"):
            return envelope(
                str(detail["message"]), str(detail.get("code") or EXECUTION_FAILED),
                detail.get("field"),
            )  # fmt: skip
    if isinstance(exc, PermissionError):
        return envelope(str(exc) or "Permission denied", POLICY_CODE)
    return envelope(str(exc) or type(exc).__name__, EXECUTION_FAILED)
