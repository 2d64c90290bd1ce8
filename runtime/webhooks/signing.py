"""Signing webhook deliveries: per-tenant secrets and the ``Runwright-Signature`` header.

The scheme is Stripe's (docs: "Verify webhook signatures"): the signed payload is
``<timestamp>.<body>`` (the Unix time in seconds as ASCII digits, a dot, the raw request
body bytes), the MAC is HMAC-SHA256 keyed with the tenant's secret string (UTF-8) and sent
as lowercase hex: ``Runwright-Signature: t=<timestamp>,v1=<hex>``. A receiver recomputes it,
compares in constant time and refuses a timestamp outside its tolerance window (replay
protection); README "Webhooks" shows it step by step. Every attempt is signed afresh (new
``t``) over the same body.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "SECRET_PREFIX",
    "SIGNATURE_HEADER",
    "SignatureInvalid",
    "new_secret",
    "seal_context",
    "sign",
    "signature_header",
    "verify",
]

SIGNATURE_HEADER = "Runwright-Signature"
DELIVERY_HEADER = "Runwright-Delivery"
"""The delivery id: the same on every attempt of one delivery (the receiver's dedupe key)."""
EVENT_HEADER = "Runwright-Event"
"""``run.completed``, ``run.failed``, ``run.cancelled`` or ``run.paused``."""
SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureInvalid(Exception):
    """A ``Runwright-Signature`` that does not verify (malformed, wrong MAC, or stale)."""


def new_secret() -> str:
    """A fresh secret: ``whsec_`` and 32 random bytes in base64url (256 bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def seal_context(tenant_id: uuid.UUID) -> bytes:
    """The secret box context of a tenant's secret: a sealed secret copied to another
    tenant's row does not open there (runtime/secret_box.py)."""
    return b"runwright:webhook-secret:" + tenant_id.bytes


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 of ``<timestamp>.<body>`` keyed with ``secret``, lowercase hex."""
    message = str(int(timestamp)).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The ``Runwright-Signature`` value for ``body``: ``t=<unix seconds>,v1=<hex>``."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={sign(secret, t, body)}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Check a ``Runwright-Signature`` header as a receiver should.

    Any ``v1`` entry may match (room for more than one during a future key overlap);
    unknown entries are ignored.

    Returns:
        The verified timestamp.

    Raises:
        SignatureInvalid: no ``t`` or ``v1``, no ``v1`` matches, or ``t`` is more than
            ``tolerance_seconds`` away from ``now`` (default: the current time).
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureInvalid("malformed signature header")
    expected = sign(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureInvalid("signature does not match")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise SignatureInvalid("timestamp outside the tolerance window")
    return timestamp
