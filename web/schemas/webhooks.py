"""Request and response models of the webhook routes (issue 12 item 5)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from web.schemas.common import UtcDatetime


class WebhookSecretCreated(BaseModel):
    """``POST /admin/webhooks/secret``: the new secret, shown this once."""

    secret: str = Field(
        description="HMAC-SHA256 key (the whole string, UTF-8) for Runwright-Signature. "
        "Shown only in this response; store it now."
    )
    version: int = Field(description="1 for the first secret, +1 per rotation.")
    created_at: UtcDatetime


class WebhookSecretInfo(BaseModel):
    """``GET /admin/webhooks/secret``: whether the tenant has a secret (never the secret)."""

    configured: bool
    version: int | None
    created_at: UtcDatetime | None


class WebhookDeliveryResponse(BaseModel):
    """One delivery of a run's webhook (one per terminal or paused status)."""

    delivery_id: str = Field(description="Sent as Runwright-Delivery on every attempt.")
    run_id: str
    url: str
    event: Literal["run.completed", "run.failed", "run.cancelled", "run.paused"]
    state: Literal["pending", "delivered", "failed"]
    attempts: int = Field(description="Attempts started so far.")
    next_attempt_at: UtcDatetime | None = Field(description="While pending: when it is due.")
    last_attempt_at: UtcDatetime | None
    last_status_code: int | None = Field(description="The receiver's last HTTP status.")
    last_error: str | None = Field(
        description="Why the last attempt failed: 'HTTP 500: <start of the answer>', "
        "'connection failed', 'timed out', 'refused: ...' (at most 200 characters)."
    )
    created_at: UtcDatetime
    delivered_at: UtcDatetime | None
