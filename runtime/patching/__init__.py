"""The patch engine of the coding toolpack (contract 7.4, improved per docs/design.md 8.9).

Pure Python, no database: apply a unified diff or a ``*** Begin Patch`` envelope to a
workspace directory and report in the contract's shapes.

- :func:`apply_patch` -> the runtime result ``{ok, code, summary, failures, applied_files,
  hunk_offsets, metrics}`` (the caller adds ``revision_token``);
- :func:`tool_envelope` -> the tool-level success/failure envelope with refresh windows and
  the verification plan;
- :func:`make_unified_diff` -> a diff that :func:`apply_patch` applies exactly.

Modules: ``parse_unified`` / ``parse_begin_patch`` (text -> :class:`~.model.FileOp`),
``targets`` (strip rule, path policy), ``locate`` (hunk placement, offset search), ``ops``
(one file section in memory), ``workspace`` (staging, atomic writes), ``apply``
(orchestration), ``result`` / ``failures`` / ``envelope`` (output shapes),
``codes``.
"""

from runtime.patching import codes
from runtime.patching.apply import apply_patch
from runtime.patching.diff import make_unified_diff
from runtime.patching.envelope import tool_envelope, verification_plan
from runtime.patching.locate import MAX_HUNK_OFFSET

__all__ = [
    "MAX_HUNK_OFFSET",
    "apply_patch",
    "codes",
    "make_unified_diff",
    "tool_envelope",
    "verification_plan",
]
