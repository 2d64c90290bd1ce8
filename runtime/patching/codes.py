"""Result codes and failure reasons of ``apply_patch`` (contract section 7.4).

Plain string constants, because they travel straight into JSON tool outputs.
"""

from __future__ import annotations

from typing import Final

# ---- result codes (contract 7.4) ----------------------------------------------------------
PATCH_APPLIED: Final = "PATCH_APPLIED"
PATCH_HUNK_MISMATCH: Final = "PATCH_HUNK_MISMATCH"
PATCH_PARTIAL_APPLY: Final = "PATCH_PARTIAL_APPLY"
PATCH_PRECONDITION_FAILED: Final = "PATCH_PRECONDITION_FAILED"
PATCH_PARSE_FAILED: Final = "PATCH_PARSE_FAILED"
PATCH_BINARY_NOT_SUPPORTED: Final = "PATCH_BINARY_NOT_SUPPORTED"
PATCH_TOO_LARGE: Final = "PATCH_TOO_LARGE"
PATCH_POLICY_VIOLATION: Final = "PATCH_POLICY_VIOLATION"

# ---- failure reasons (contract 7.4) -------------------------------------------------------
INVALID_HUNK_OFFSET: Final = "invalid_hunk_offset"
CONTEXT_MISMATCH: Final = "context_mismatch"
DELETION_MISMATCH: Final = "deletion_mismatch"
UNSUPPORTED_HUNK_LINE: Final = "unsupported_hunk_line"
UNSUPPORTED_BEGIN_PATCH_LINE: Final = "unsupported_begin_patch_line"
PRECONDITION_HASH_MISMATCH: Final = "precondition_hash_mismatch"
CREATE_NOT_ALLOWED: Final = "create_not_allowed"
DELETE_NOT_ALLOWED: Final = "delete_not_allowed"
FILE_MISSING: Final = "file_missing"
TARGET_EXISTS: Final = "target_exists"
INVALID_ADD_FILE_PATCH: Final = "invalid_add_file_patch"
# Ours (docs/design.md 8.9: the path policy applies to apply_patch); the contract has no reason
# for it because the reference never rejected a patch path.
PATH_POLICY_VIOLATION: Final = "path_policy_violation"
