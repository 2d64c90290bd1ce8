"""The webhook signing scheme and retry schedule (runtime/webhooks), as README documents."""

from __future__ import annotations

import hashlib
import hmac
import uuid

import pytest

from runtime.secret_box import SecretBox, SecretBoxError
from runtime.webhooks.delivery import render_body, retry_delay, sanitize
from runtime.webhooks.signing import (
    SignatureInvalid,
    new_secret,
    seal_context,
    signature_header,
    verify,
)

BODY = b'{"run_id":"r","status":"completed"}'


def test_the_header_is_hmac_sha256_over_timestamp_dot_body() -> None:
    secret = new_secret()
    header = signature_header(secret, BODY, timestamp=1_700_000_000)
    mac = hmac.new(secret.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={mac}"
    assert verify(secret, header, BODY, now=1_700_000_100) == 1_700_000_000


@pytest.mark.parametrize(
    ("header_secret", "body", "now"),
    [
        ("other", BODY, 1_700_000_000),  # another tenant's secret
        ("mine", BODY + b" ", 1_700_000_000),  # a changed body
        ("mine", BODY, 1_700_000_301),  # a replay after the tolerance window
        ("mine", BODY, 1_699_999_699),  # a timestamp from the future
    ],
)
def test_verification_refuses_other_secrets_bodies_and_stale_times(header_secret, body, now):
    header = signature_header(header_secret, BODY, timestamp=1_700_000_000)
    with pytest.raises(SignatureInvalid):
        verify("mine", header, body, now=now)


@pytest.mark.parametrize("header", ["", "v1=abc", "t=1700000000", "t=x,v1=abc"])
def test_malformed_headers_do_not_verify(header: str) -> None:
    with pytest.raises(SignatureInvalid):
        verify("mine", header, BODY, now=1_700_000_000)


def test_a_sealed_secret_opens_only_for_its_tenant() -> None:
    box = SecretBox(b"k" * 32)
    tenant, other = uuid.uuid4(), uuid.uuid4()
    sealed = box.seal("whsec_x", context=seal_context(tenant))
    assert box.open(sealed, context=seal_context(tenant)) == "whsec_x"
    with pytest.raises(SecretBoxError):
        box.open(sealed, context=seal_context(other))


def test_retry_delays_grow_exponentially_with_jitter_up_to_the_cap() -> None:
    low = [retry_delay(n, base=1.0, cap=60.0, rand=lambda: 0.0) for n in range(1, 9)]
    high = [retry_delay(n, base=1.0, cap=60.0, rand=lambda: 1.0) for n in range(1, 9)]
    assert high == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert low == [h / 2 for h in high]


def test_errors_are_sanitised_and_bounded() -> None:
    assert sanitize("HTTP 500: a\x00\r\n  b\x1b[31m") == "HTTP 500: a b [31m"
    assert len(sanitize("x" * 5000)) == 200


def test_the_body_is_the_run_object_from_the_snapshot() -> None:
    snapshot = {
        "id": "7f0c1a52-3f4e-4a7e-9d5c-2b6a8e0f1c3d", "status": "completed",
        "execution_engine": "native", "surface": "published_app_coding_agent",
        "published_app_id": "a", "base_revision_id": "b", "result_revision_id": None,
        "checkpoint_revision_id": None, "requested_model_id": None,
        "resolved_model_id": None, "error_message": None,
        "created_at": "2026-12-03T13:00:00.5+00:00", "started_at": "2026-12-03T14:00:01+01:00",
        "completed_at": None, "lease_expires_at": None,
    }  # fmt: skip
    body = render_body(snapshot)
    assert body.startswith(b'{"run_id":"7f0c1a52-3f4e-4a7e-9d5c-2b6a8e0f1c3d","status"')
    assert b'"created_at":"2026-12-03T13:00:00.500000+00:00"' in body
    assert b'"started_at":"2026-12-03T13:00:01+00:00"' in body  # UTC on the wire
    assert render_body(snapshot) == body
