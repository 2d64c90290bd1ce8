"""Checking a run's ``webhook`` at creation (issue 12 item 5, docs/security.md "Webhooks").

The URL a tenant names is a tenant-chosen destination like a model ``base_url``: it must
pass the egress policy (resolved now; checked again at every delivery attempt, which also
connects only to the address it checked), and the tenant must have a signing secret, or
its receiver could not tell our deliveries from anyone's. Each refusal is a 422 item on
``body.webhook``; the egress cause goes to the log only (no oracle for internal names).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from runtime.egress import REFUSED_MESSAGE, EgressRefused
from runtime.settings import Settings
from storage.database import Database
from storage.webhooks import WebhookStore
from web.errors import ApiError

log = logging.getLogger(__name__)

WEBHOOK_REFUSED = f"webhook is {REFUSED_MESSAGE}"
NO_SECRET = "create the tenant's webhook secret first (POST /admin/webhooks/secret)"


async def check_webhook(db: Database, settings: Settings, tenant_id: uuid.UUID, url: str) -> None:
    """Refuse a webhook the tenant may not use.

    Raises:
        ApiError: 422, ``loc`` ``["body", "webhook"]``: the egress policy refuses the URL
            (scheme, credentials, host allow-list, or a resolved address that is loopback,
            private, link-local, metadata, ...), or the tenant has no webhook secret.
    """
    try:
        await settings.egress_policy().resolve(url)
    except EgressRefused as exc:
        log.info("webhook refused: %s", exc.reason)
        raise ApiError(422, [_item(WEBHOOK_REFUSED)]) from None
    if await WebhookStore(db).get_secret(tenant_id) is None:
        raise ApiError(422, [_item(NO_SECRET)])


def _item(message: str) -> dict[str, Any]:
    return {"type": "value_error", "loc": ["body", "webhook"], "msg": message, "input": None}
