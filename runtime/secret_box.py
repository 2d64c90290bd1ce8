"""Encryption at rest for tenant secrets (model API keys), with AES-256-GCM.

Issue 9 item 2: a tenant model's ``api_key`` is write-only and stored encrypted. The server
key comes from ``RUNWRIGHT_SECRETS_KEY`` (32 bytes, base64url) or, when that is unset, from
``<data_dir>/secrets_key``, generated on first use with mode 0600 (like the JWT secret; a
production operator sets the variable, or backs the file up: without it stored keys cannot
be decrypted).

A sealed value is ``version (1 byte) || nonce (12 bytes) || ciphertext+tag``. The caller's
``context`` (e.g. the model id and endpoint a key belongs to) is bound as associated data:
a ciphertext copied to another row does not decrypt there.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["KEY_FILE", "SecretBox", "SecretBoxError", "load_secret_box"]

log = logging.getLogger(__name__)

KEY_FILE = "secrets_key"
_VERSION = b"\x01"
_NONCE_BYTES = 12
_KEY_BYTES = 32


class SecretBoxError(Exception):
    """A sealed value cannot be opened (other server key, other context, or corrupt)."""


class SecretBox:
    """Seals and opens small secrets with one server key.

    Args:
        key: 32 random bytes.

    Raises:
        ValueError: the key is not 32 bytes.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY_BYTES:
            raise ValueError(f"the secrets key must be {_KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def seal(self, plaintext: str, *, context: bytes) -> bytes:
        """Encrypt ``plaintext`` (UTF-8) bound to ``context``; a fresh nonce each call."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), context)

    def open(self, sealed: bytes, *, context: bytes) -> str:
        """Decrypt a value :meth:`seal` produced with the same ``context``.

        Raises:
            SecretBoxError: wrong key or context, or the value is corrupt.
        """
        if len(sealed) < 1 + _NONCE_BYTES + 16 or sealed[:1] != _VERSION:
            raise SecretBoxError("sealed value has an unknown format")
        nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, context).decode()
        except (InvalidTag, UnicodeDecodeError):
            raise SecretBoxError("sealed value does not open with this server key") from None


def decode_key(text: str) -> bytes:
    """The 32 key bytes from their base64url form (padding optional).

    Raises:
        ValueError: not base64url, or not 32 bytes.
    """
    text = text.strip()
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("the secrets key is not base64url") from None
    if len(key) != _KEY_BYTES:
        raise ValueError(f"the secrets key must decode to {_KEY_BYTES} bytes, not {len(key)}")
    return key


def new_key_text() -> str:
    """A fresh key in the form ``RUNWRIGHT_SECRETS_KEY`` takes."""
    return base64.urlsafe_b64encode(secrets.token_bytes(_KEY_BYTES)).decode().rstrip("=")


def load_secret_box(configured: str | None, data_dir: Path) -> SecretBox:
    """The server's box: from ``configured`` (the setting) or ``<data_dir>/secrets_key``.

    When neither exists a key is generated into that file. The file is created complete
    with mode 0600 and then linked into place, so a concurrent process (the CLI and the
    server) never reads a half-written key: whoever links first wins and the other reads it.
    Blocking file I/O: call it off the event loop.

    Raises:
        ValueError: the configured or stored key is malformed.
        OSError: the data directory cannot be written or read.
    """
    if configured:
        return SecretBox(decode_key(configured))
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(new_key_text())
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(staging, path)
                log.warning(
                    "RUNWRIGHT_SECRETS_KEY is not set; generated the key that encrypts tenant "
                    "model keys in %s (set the variable or back the file up in production)",
                    path,
                )
            except FileExistsError:
                pass
        finally:
            staging.unlink(missing_ok=True)
    return SecretBox(decode_key(path.read_text(encoding="ascii")))
