"""Bearer tokens: HS256 JWTs minted by the CLI and tests, verified by :mod:`web.auth`.

Claims (contract section 9): ``sub`` (user id, or workload principal id), ``tenant_id``,
``org_role``, optional ``scopes`` (list of strings), optional ``platform_admin`` (bool),
``kind`` (``"user"`` | ``"workload"``), ``iat``, ``exp``.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

import jwt

from runtime.settings import Settings

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
SECRET_FILE = "jwt_secret"
DEFAULT_TTL_SECONDS = 3600

TokenKind = Literal["user", "workload"]


class InvalidToken(Exception):
    """The token is malformed, expired, badly signed or has claims of the wrong type."""


def mint_token(
    secret: str,
    *,
    subject: uuid.UUID | str,
    tenant_id: uuid.UUID | str | None,
    org_role: str | None = None,
    kind: TokenKind = "user",
    scopes: Iterable[str] | None = None,
    platform_admin: bool = False,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
) -> str:
    """Sign a bearer token.

    Args:
        subject: the user id (``kind="user"``) or workload principal id.
        tenant_id: the token tenant; ``None`` mints a token without the claim (which the
            auth chain refuses with 403 "Tenant context required").
        scopes: for users, narrows the role's scopes; for workloads, the granted scopes.
        ttl_seconds: lifetime; ``exp = now + ttl``.

    Returns:
        The compact JWT (send as ``Authorization: Bearer <token>``).
    """
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": str(subject),
        "kind": kind,
        "iat": now,
        "exp": now + ttl_seconds,
        "platform_admin": platform_admin,
    }
    if tenant_id is not None:
        claims["tenant_id"] = str(tenant_id)
    if org_role is not None:
        claims["org_role"] = org_role
    if scopes is not None:
        claims["scopes"] = sorted(set(scopes))
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(secret: str, token: str) -> dict[str, Any]:
    """Verify the signature and expiry and return the claims.

    Raises:
        InvalidToken: anything wrong with the token.
    """
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]}
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    if not isinstance(claims, dict):
        raise InvalidToken("claims are not an object")
    return claims


class VerifiedTokens:
    """Claims of tokens verified before, so a client sending the same token on every
    request pays for its signature and claim checks once (PyJWT's decode was ~3 % of the
    server's CPU per scripted run: two requests per run, issue 10).

    A hit needs the same secret and the byte-identical token, whose signature was checked
    then; only the time-bound rules are checked again, with PyJWT's own comparisons (no
    leeway): refused once ``now >= exp``, or while ``now < iat`` or ``now < nbf``. A
    refused token is never kept. At most ``max_entries`` are kept, the oldest dropped
    first.

    Args:
        max_entries: entries kept (>= 1).
        clock: seconds since the epoch (``time.time``; tests pass their own).
    """

    def __init__(self, max_entries: int = 1024, clock: Callable[[], float] = time.time) -> None:
        self._max = max_entries
        self._clock = clock
        self._seen: dict[tuple[str, str], tuple[dict[str, Any], float, float]] = {}

    def decode(self, secret: str, token: str) -> dict[str, Any]:
        """As :func:`decode_token` (a fresh dict each call).

        Raises:
            InvalidToken: anything wrong with the token, now.
        """
        key = (secret, token)
        hit = self._seen.get(key)
        if hit is not None:
            claims, not_before, expires = hit
            now = self._clock()
            if not_before <= now < expires:
                return dict(claims)
            self._seen.pop(key, None)  # PyJWT, asked now, refuses it on the same rule
            raise InvalidToken(
                "Signature has expired" if now >= expires else "The token is not yet valid"
            )
        claims = decode_token(secret, token)
        try:  # decode_token checked that they are integers when present
            not_before = max(int(claims.get("iat", 0)), int(claims.get("nbf", 0)))
            expires = int(claims["exp"])
        except (TypeError, ValueError, OverflowError, KeyError):
            return claims  # not kept: checked in full every time
        if len(self._seen) >= self._max:
            self._seen.pop(next(iter(self._seen)), None)
        self._seen[key] = (dict(claims), not_before, expires)
        return claims


def resolve_jwt_secret(settings: Settings) -> str:
    """Return ``settings.jwt_secret``, else the secret stored in ``<data_dir>/jwt_secret``.

    When neither exists a random secret is written to that file with mode 0600 and a warning
    is logged (tokens then survive restarts, and the CLI and the server agree on it).

    Raises:
        OSError: the data directory or the file cannot be written or read.
    """
    if settings.jwt_secret:
        return settings.jwt_secret
    path = Path(settings.data_dir) / SECRET_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # O_EXCL: if a concurrent process (CLI and server) created it first, use theirs.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret)
    log.warning(
        "RUNWRIGHT_JWT_SECRET is not set; generated a secret in %s (set it in production)", path
    )
    return secret
