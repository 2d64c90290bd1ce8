"""``Idempotency-Key`` on resume: a retried resume is answered, never applied twice.

The same header as run creation (IETF draft-ietf-httpapi-idempotency-key-header, which
covers any non-idempotent request, as Stripe applies its key to every POST). A resume's
answer can be lost after its command went through (a 503 from an actor that did not answer
in time while its write still landed; a dropped connection). A retry without a key then
meets 409 "Run is not paused" or, worse, a run that has meanwhile paused again, which it
would resume a second time. With a key the run recognises its own resume:

- The key is stored with the resume that applied it, in the same conditional write that
  moves the run ``paused -> queued`` (``resume_payload``, under :data:`FIELD`): stored if
  and only if the resume applied, whatever happens to the answer.
- A resume whose key the run holds, with the same body, is answered with the run as it
  is now (200), wherever it has got to, paused again included: no second resume, no second
  engine start. With another body: 422 ``IDEMPOTENCY_KEY_REUSED``.
- Keys are scoped to the caller (``principal``) and stored as digests; a run keeps the keys
  of its last :data:`KEPT` resumes (a run pauses a handful of times; a retry is seconds
  old). They live as long as the run and leave with it.

Plain functions, no I/O: the run lifecycle calls them (functional core).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from runtime.runs.errors import ResumeKeyReused

FIELD: Final = "runwright.resume_keys"
"""The member of ``agent_runs.resume_payload`` holding the keys (a client's ``payload``
may not use it: the resume route refuses it with a 422)."""

KEPT: Final = 16
"""How many of a run's latest resume keys it remembers."""


@dataclass(frozen=True, slots=True)
class ResumeKey:
    """One resume's key as stored on the run.

    Attributes:
        digest: sha256 hex of the caller and the header's key (the raw key is not stored).
        fingerprint: sha256 hex of the request body in canonical JSON.
    """

    digest: str
    fingerprint: str

    @classmethod
    def of(cls, principal: str, key: str, fingerprint: str) -> ResumeKey:
        """The stored form of ``key`` sent by ``principal`` (e.g. ``user:<uuid>``)."""
        digest = hashlib.sha256(f"{principal}\n{key}".encode()).hexdigest()
        return cls(digest, fingerprint)

    def as_dict(self) -> dict[str, str]:
        """The JSON form kept in ``resume_payload[FIELD]``."""
        return {"digest": self.digest, "fingerprint": self.fingerprint}


def _stored(resume_payload: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    keys = resume_payload.get(FIELD) if isinstance(resume_payload, Mapping) else None
    return [k for k in keys if isinstance(k, dict)] if isinstance(keys, list) else []


def applied(resume_payload: Mapping[str, Any] | None, key: ResumeKey | None) -> bool:
    """Whether the run's stored ``resume_payload`` holds ``key``: that resume applied.

    Raises:
        ResumeKeyReused: the key was applied with another request body (422).
    """
    if key is None:
        return False
    for stored in _stored(resume_payload):
        if stored.get("digest") == key.digest:
            if stored.get("fingerprint") != key.fingerprint:
                raise ResumeKeyReused()
            return True
    return False


def with_key(
    payload: dict[str, Any], previous: Mapping[str, Any] | None, key: ResumeKey | None
) -> dict[str, Any]:
    """The ``resume_payload`` to store: ``payload`` plus the keys of earlier resumes
    (``previous``: the run's stored ``resume_payload``) and ``key``, the last
    :data:`KEPT`. Unchanged when there is no key to keep."""
    keys = _stored(previous)
    if key is not None:
        keys.append(key.as_dict())
    if not keys:
        return payload
    return {**payload, FIELD: keys[-KEPT:]}


def engine_payload(resume_payload: Mapping[str, Any] | None) -> dict[str, Any]:
    """The stored ``resume_payload`` as the engine gets it: without the keys."""
    if not isinstance(resume_payload, Mapping):
        return {}
    return {name: value for name, value in resume_payload.items() if name != FIELD}
