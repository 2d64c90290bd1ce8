"""Resume idempotency keys kept on the run (runtime/runs/resume_keys.py)."""

from __future__ import annotations

import pytest

from runtime.runs import resume_keys
from runtime.runs.errors import ResumeKeyReused
from runtime.runs.resume_keys import FIELD, KEPT, ResumeKey


def test_a_key_is_recognised_only_once_stored_and_only_with_its_body() -> None:
    key = ResumeKey.of("user:a", "k1", "f1")
    assert not resume_keys.applied(None, key)
    stored = resume_keys.with_key({"go": 1}, None, key)
    assert resume_keys.applied(stored, key)
    assert resume_keys.engine_payload(stored) == {"go": 1}
    assert not resume_keys.applied(stored, ResumeKey.of("user:b", "k1", "f1"))  # per caller
    assert not resume_keys.applied(stored, None)
    with pytest.raises(ResumeKeyReused):
        resume_keys.applied(stored, ResumeKey.of("user:a", "k1", "f2"))


def test_later_resumes_keep_earlier_keys_up_to_the_bound() -> None:
    assert resume_keys.with_key({"go": 1}, None, None) == {"go": 1}  # nothing to keep
    payload: dict = {}
    keys = [ResumeKey.of("user:a", f"k{n}", "f") for n in range(KEPT + 2)]
    for key in keys:
        payload = resume_keys.with_key({}, payload, key)
    assert len(payload[FIELD]) == KEPT
    assert not resume_keys.applied(payload, keys[1])
    assert all(resume_keys.applied(payload, key) for key in keys[2:])
    # A resume without a key still carries the earlier ones.
    assert resume_keys.applied(resume_keys.with_key({}, payload, None), keys[-1])
