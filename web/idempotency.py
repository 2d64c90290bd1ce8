"""``Idempotency-Key`` on run creation and resume (IETF draft-ietf-httpapi-idempotency-
key-header). Resume: :func:`resume_key`; the run itself keeps the key of each resume it
applied (:mod:`runtime.runs.resume_keys`). Creation:

- The key is scoped to the caller: (tenant, app, principal). Another principal's identical
  key is a different key.
- Same key, same body (canonical JSON, so whitespace and member order do not matter): the
  first response again, 200, byte for byte; no second run.
- Same key, another body: 422 ``IDEMPOTENCY_KEY_REUSED`` (draft section 2.7).
- Concurrent duplicates: the run and its key row are one insert, so exactly one run exists
  and every duplicate gets its response (the database decides, not a check-then-act).
- Only a request that created a run binds its key: a refused create (4xx) may be retried
  with the same key and is evaluated again.
- Keys expire after ``RUNWRIGHT_IDEMPOTENCY_KEY_TTL_SECONDS`` (default 24 h); then the key
  is free for a new run. :class:`KeySweeper` deletes expired rows in the background.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from quart import request

from runtime.runs.resume_keys import ResumeKey
from runtime.tasks import cancel_and_wait
from storage import idempotency as store
from storage.database import Database
from storage.errors import StorageError
from storage.idempotency import IdempotencyKey, StoredKey
from web.errors import IDEMPOTENCY_KEY_REUSED, ApiError
from web.validation import read_body

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
REUSED = IDEMPOTENCY_KEY_REUSED
EXPIRED_MEANWHILE = {
    "code": "IDEMPOTENCY_KEY_BUSY",
    "message": "This Idempotency-Key changed hands while the request ran; retry it.",
}


def _invalid(msg: str, value: str) -> ApiError:
    return ApiError(
        422,
        [{"type": "value_error", "loc": ["header", "idempotency-key"], "msg": msg,
          "input": value[:MAX_KEY_LENGTH]}],
    )  # fmt: skip


def parse_key(value: str) -> str:
    """The key of an ``Idempotency-Key`` header value.

    The draft defines the value as a Structured Field string (``"abc"``, RFC 8941 section
    3.3.3); a bare token (``abc``) is accepted too, as many clients send it.

    Raises:
        ApiError: 422 (``loc`` ``["header", "idempotency-key"]``) when the key is empty,
            longer than :data:`MAX_KEY_LENGTH` or not printable ASCII, or the quoting is bad.
    """
    text = value.strip()
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"'):
            raise _invalid("Unterminated quoted key", value)
        key, escaped = [], False
        for char in text[1:-1]:
            if escaped:
                if char not in '"\\':
                    raise _invalid('Only \\" and \\\\ may be escaped in the key', value)
                key.append(char)
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                raise _invalid("Unescaped quote inside the key", value)
            else:
                key.append(char)
        if escaped:
            raise _invalid("The key ends inside an escape", value)
        text = "".join(key)
    elif '"' in text:
        raise _invalid("A bare key must not contain quotes", value)
    if not text:
        raise _invalid("Idempotency-Key must not be empty", value)
    if len(text) > MAX_KEY_LENGTH:
        raise _invalid(f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters", value)
    if not all(" " <= char <= "~" for char in text):
        raise _invalid("Idempotency-Key must be printable ASCII", value)
    return text


async def request_key(
    tenant_id: Any, app_id: Any, principal: str, ttl_seconds: float
) -> IdempotencyKey | None:
    """The current request's key (None without the header), with the fingerprint of its
    body. Call after the body was validated (it is valid JSON then).

    Raises:
        ApiError: 422 for a malformed header (:func:`parse_key`).
    """
    header = request.headers.get(HEADER)
    if header is None:
        return None
    key = parse_key(header)
    return IdempotencyKey(tenant_id, app_id, principal, key, await _fingerprint(), ttl_seconds)


async def resume_key(principal: str) -> ResumeKey | None:
    """The current resume request's key (None without the header), scoped to
    ``principal``, with the fingerprint of its body (:mod:`runtime.runs.resume_keys`).
    Call after the body was validated.

    Raises:
        ApiError: 422 for a malformed header (:func:`parse_key`).
    """
    header = request.headers.get(HEADER)
    if header is None:
        return None
    return ResumeKey.of(principal, parse_key(header), await _fingerprint())


async def _fingerprint() -> str:
    """sha256 hex of the request body in canonical JSON (whitespace and member order do
    not matter; an empty body counts as ``{}``)."""
    data = await read_body()
    body = json.loads(data) if data.strip() else {}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def replay(stored: StoredKey, key: IdempotencyKey) -> Any:
    """The first response of ``key``'s request.

    Raises:
        ApiError: 422 ``IDEMPOTENCY_KEY_REUSED`` when this request's body differs.
    """
    if stored.fingerprint != key.fingerprint:
        raise ApiError(422, REUSED)
    return stored.response


async def replay_existing(db: Database, key: IdempotencyKey) -> Any | None:
    """The stored response for ``key`` (see :func:`replay`), or None when the key is free."""
    stored = await store.lookup(db, key)
    return None if stored is None else replay(stored, key)


async def replay_winner(db: Database, key: IdempotencyKey, stored: StoredKey | None) -> Any:
    """The create found the key taken: the first request's response, from ``stored``
    (the entry the creation read found) or, when the insert found it taken, read now.

    Raises:
        ApiError: 422 ``IDEMPOTENCY_KEY_REUSED``; 409 ``IDEMPOTENCY_KEY_BUSY`` in the
            rare case the key expired between the insert and this read (retry).
    """
    if stored is not None:
        return replay(stored, key)
    response = await replay_existing(db, key)
    if response is None:
        raise ApiError(409, EXPIRED_MEANWHILE)
    return response


class KeySweeper:
    """Deletes expired idempotency keys every ``interval`` seconds (a lifespan step).

    Args:
        db: returns the started database.
        interval: seconds between sweeps.
    """

    def __init__(self, db: Callable[[], Database], *, interval: float) -> None:
        self._db = db
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="idempotency-key-sweeper")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                deleted = await store.sweep(self._db())
            except StorageError as exc:  # the next round tries again
                log.warning("sweeping expired idempotency keys failed: %s", exc)
                continue
            if deleted:
                log.info("deleted %d expired idempotency keys", deleted)
