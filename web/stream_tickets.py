"""Stream tickets: short-lived, read-only credentials for one run's event stream.

Why: a browser's ``EventSource`` cannot send an ``Authorization`` header, and a bearer token
in a URL would leak a full credential into history, logs and referrers. Instead the page
(holding the bearer token in memory) asks ``POST .../runs/{run_id}/stream-ticket`` and opens
``EventSource(".../stream?ticket=...")``. A ticket is worth only that: reading one run's
stream, for ``RUNWRIGHT_STREAM_TICKET_TTL_SECONDS`` (default 120 s) after it was issued.

Form: an HS256 JWT (RFC 7519) signed with a key *derived* from the server's JWT secret
(HMAC-SHA256 of a fixed label), with audience ``runwright:run-stream``. The derived key
means a ticket can never pass as a bearer token (and a bearer token never as a ticket),
whatever the claims. Tickets are stateless, so any node verifies them, and reusable until
they expire, so EventSource's own reconnect (same URL + ``Last-Event-ID``) works; a stream
opened before expiry runs to its end. Claims: ``sub`` (who asked), ``tid`` (tenant),
``aid`` (app), ``rid`` (run), ``iat``, ``exp``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
AUDIENCE = "runwright:run-stream"
_KEY_LABEL = b"runwright stream ticket v1"
# A URL query value; a real ticket is ~400 characters.
MAX_TICKET_CHARS = 2048


class InvalidTicket(Exception):
    """The ticket is malformed, badly signed, expired, or for another run."""


@dataclass(frozen=True, slots=True)
class Ticket:
    """What a verified ticket grants: reading ``run_id``'s stream in ``app_id`` and
    ``tenant_id``."""

    subject: str
    tenant_id: uuid.UUID
    app_id: uuid.UUID
    run_id: uuid.UUID
    expires_at: int


def _key(jwt_secret: str) -> bytes:
    return hmac.new(jwt_secret.encode(), _KEY_LABEL, hashlib.sha256).digest()


def issue(
    jwt_secret: str,
    *,
    subject: uuid.UUID | str,
    tenant_id: uuid.UUID,
    app_id: uuid.UUID,
    run_id: uuid.UUID,
    ttl_seconds: int,
    now: float | None = None,
) -> tuple[str, int]:
    """Sign a ticket.

    Returns:
        ``(ticket, expires_at)``, ``expires_at`` in Unix seconds.
    """
    issued = int(time.time() if now is None else now)
    expires = issued + ttl_seconds
    claims = {
        "aud": AUDIENCE,
        "sub": str(subject),
        "tid": str(tenant_id),
        "aid": str(app_id),
        "rid": str(run_id),
        "iat": issued,
        "exp": expires,
    }
    return jwt.encode(claims, _key(jwt_secret), algorithm=ALGORITHM), expires


def verify(jwt_secret: str, ticket: str, *, app_id: uuid.UUID, run_id: uuid.UUID) -> Ticket:
    """Check a ticket's signature, audience and expiry, and that it names this app and run.

    Raises:
        InvalidTicket: any of those fails.
    """
    if len(ticket) > MAX_TICKET_CHARS:
        raise InvalidTicket("ticket too long")
    try:
        claims = jwt.decode(
            ticket, _key(jwt_secret), algorithms=[ALGORITHM], audience=AUDIENCE,
            options={"require": ["aud", "sub", "tid", "aid", "rid", "exp"]},
        )  # fmt: skip
        granted = Ticket(
            subject=str(claims["sub"]),
            tenant_id=uuid.UUID(str(claims["tid"])),
            app_id=uuid.UUID(str(claims["aid"])),
            run_id=uuid.UUID(str(claims["rid"])),
            expires_at=int(claims["exp"]),
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidTicket(str(exc)) from exc
    if granted.app_id != app_id or granted.run_id != run_id:
        raise InvalidTicket("ticket is for another run")
    return granted
