"""HTTP helpers shared by API tests (through the Quart test client)."""

from __future__ import annotations

import uuid
from typing import Any


async def create_app_via_api(
    client: Any, headers: dict[str, str], *, slug: str | None = None, **fields: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``POST /admin/apps`` then ``GET .../builder/state``, as the reference tests do.

    Returns:
        ``(app, current_draft_revision)`` as JSON objects.
    """
    body = {"name": "Demo app", "slug": slug or f"app-{uuid.uuid4().hex[:10]}", **fields}
    created = await client.post("/admin/apps", json=body, headers=headers)
    assert created.status_code == 200, await created.get_data(as_text=True)
    app = await created.get_json()
    state = await client.get(f"/admin/apps/{app['id']}/builder/state", headers=headers)
    assert state.status_code == 200, await state.get_data(as_text=True)
    return app, (await state.get_json())["current_draft_revision"]
