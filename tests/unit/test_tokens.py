"""Token minting/verification and the generated secret file."""

from __future__ import annotations

import stat
import time
import uuid

import pytest

from runtime.settings import load_settings
from web.tokens import (
    InvalidToken,
    VerifiedTokens,
    decode_token,
    mint_token,
    resolve_jwt_secret,
)

SECRET = "unit-secret-0123456789abcdef-0123456789"


def test_round_trip_carries_the_contract_claims():
    user, tenant = uuid.uuid4(), uuid.uuid4()
    token = mint_token(SECRET, subject=user, tenant_id=tenant, org_role="admin", scopes=["b", "a"])
    claims = decode_token(SECRET, token)
    assert claims["sub"] == str(user)
    assert claims["tenant_id"] == str(tenant)
    assert claims["org_role"] == "admin"
    assert claims["kind"] == "user"
    assert claims["scopes"] == ["a", "b"]
    assert claims["platform_admin"] is False
    assert claims["exp"] - claims["iat"] == 3600


def test_wrong_secret_and_expiry_are_rejected():
    token = mint_token(SECRET, subject=uuid.uuid4(), tenant_id=None)
    with pytest.raises(InvalidToken):
        decode_token(SECRET + "x", token)
    expired = mint_token(SECRET, subject=uuid.uuid4(), tenant_id=None, ttl_seconds=-5)
    with pytest.raises(InvalidToken):
        decode_token(SECRET, expired)


def test_a_kept_token_still_expires_and_other_secrets_never_hit():
    now = [time.time()]
    tokens = VerifiedTokens(max_entries=2, clock=lambda: now[0])
    token = mint_token(SECRET, subject=uuid.uuid4(), tenant_id=None, ttl_seconds=60)
    first = tokens.decode(SECRET, token)
    first["sub"] = "changed by a caller"
    assert tokens.decode(SECRET, token) == decode_token(SECRET, token)  # a fresh copy
    with pytest.raises(InvalidToken):
        tokens.decode(SECRET + "x", token)  # the signature is checked for another secret
    now[0] = first["exp"] - 0.001
    assert tokens.decode(SECRET, token)["exp"] == first["exp"]
    now[0] = first["exp"]  # PyJWT: expired once exp <= now
    with pytest.raises(InvalidToken):
        tokens.decode(SECRET, token)
    tokens.decode(SECRET, token)  # not kept: checked in full (real time) and kept again
    now[0] = first["iat"] - 1  # a clock before iat: refused, as PyJWT refuses it
    with pytest.raises(InvalidToken):
        tokens.decode(SECRET, token)


def test_kept_tokens_are_bounded():
    tokens = VerifiedTokens(max_entries=2)
    minted = [mint_token(SECRET, subject=uuid.uuid4(), tenant_id=None) for _ in range(3)]
    for token in minted:
        tokens.decode(SECRET, token)
    assert len(tokens._seen) == 2
    assert (SECRET, minted[0]) not in tokens._seen


def test_secret_is_generated_once_with_private_permissions(tmp_path, caplog):
    settings = load_settings(data_dir=tmp_path, jwt_secret=None)
    first = resolve_jwt_secret(settings)
    path = tmp_path / "jwt_secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "RUNWRIGHT_JWT_SECRET is not set" in caplog.text
    assert resolve_jwt_secret(settings) == first
    assert len(first) >= 32
    configured = load_settings(data_dir=tmp_path, jwt_secret=SECRET)
    assert resolve_jwt_secret(configured) == SECRET
