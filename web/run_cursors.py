"""Opaque, signed cursors of the run lists (issue 12 item 4).

A cursor names a place in a run list, ``(created_at, id)``, the direction to read from it
(``older``: the next page, ``newer``: the previous one) and the list it belongs to (one
app's runs or a tenant's). Form: ``<payload>.<mac>``, both base64url without padding; the
payload is compact JSON, the mac the first 16 bytes of HMAC-SHA256 over the payload with a
key derived from the JWT secret (a fixed label, as for stream tickets), so any node
verifies it and a client cannot forge or edit one. Cursors do not expire: they grant
nothing (the route's auth chain still runs) and a position stays meaningful.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

_KEY_LABEL = b"runwright run-list cursor v1"
_MAC_BYTES = 16
MAX_CURSOR_CHARS = 512
"""A real cursor is ~190 characters."""

Direction = Literal["older", "newer"]


class InvalidCursor(Exception):
    """The cursor is malformed, not signed by this service, or for another list."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """A verified cursor: read ``direction`` of ``(created_at, run_id)`` in ``scope``."""

    direction: Direction
    created_at: datetime
    run_id: uuid.UUID
    scope: str


def scope_of(tenant_id: uuid.UUID, app_id: uuid.UUID | None) -> str:
    """The list a cursor belongs to: ``app:<id>`` or ``tenant:<id>``."""
    return f"app:{app_id}" if app_id is not None else f"tenant:{tenant_id}"


def _key(jwt_secret: str) -> bytes:
    return hmac.new(jwt_secret.encode(), _KEY_LABEL, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(jwt_secret: str, cursor: Cursor) -> str:
    """The cursor's opaque text."""
    payload = json.dumps(
        [cursor.direction, cursor.created_at.isoformat(), str(cursor.run_id), cursor.scope],
        separators=(",", ":"),
    ).encode()
    mac = hmac.new(_key(jwt_secret), payload, hashlib.sha256).digest()[:_MAC_BYTES]
    return f"{_b64(payload)}.{_b64(mac)}"


def decode(jwt_secret: str, text: str, *, scope: str) -> Cursor:
    """Verify and read a cursor for the list ``scope``.

    Raises:
        InvalidCursor: with a short reason (safe to show).
    """
    head, dot, tail = text.partition(".")
    if not dot or not head or not tail:
        raise InvalidCursor("Cursor is malformed")
    try:
        payload, mac = _unb64(head), _unb64(tail)
    except (binascii.Error, ValueError):
        raise InvalidCursor("Cursor is malformed") from None
    expected = hmac.new(_key(jwt_secret), payload, hashlib.sha256).digest()[:_MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        raise InvalidCursor("Cursor was not issued by this service or was altered")
    try:
        direction, created, run_id, cursor_scope = json.loads(payload)
        cursor = Cursor(direction, datetime.fromisoformat(created), uuid.UUID(run_id), cursor_scope)
    except (ValueError, TypeError):
        raise InvalidCursor("Cursor is malformed") from None
    if cursor.direction not in ("older", "newer") or cursor.created_at.tzinfo is None:
        raise InvalidCursor("Cursor is malformed")
    if cursor.scope != scope:
        raise InvalidCursor("Cursor belongs to another list")
    return cursor
