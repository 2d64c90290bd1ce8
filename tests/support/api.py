"""HTTP helpers shared by API tests (through the Quart test client)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from runtime.settings import Settings
from web.app import create_app
from web.services import Services, build_services


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


@contextlib.asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[tuple[Any, Services]]:
    """Start a whole app for ``settings`` (its lifespan runs) and yield ``(client,
    services)``: for tests that start and stop the service themselves (restarts)."""
    services = build_services(settings)
    quart_app = create_app(settings, services=services)
    async with quart_app.test_app():
        yield quart_app.test_client(), services
