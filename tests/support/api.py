"""HTTP helpers shared by API tests (through the Quart test client)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from quart import Quart
from quart.testing.app import TestApp

from runtime.settings import Settings
from web.app import create_app
from web.services import Services, build_services

# Start-up beyond the engines' own limits: database, migrations and the local pieces on a
# loaded 2-core machine (Quart's TestApp gives 6 s, which a managed `opencode serve`
# starting beside other test sessions overran).
STARTUP_MARGIN_SECONDS = 60
SHUTDOWN_MARGIN_SECONDS = 30


def serving(quart_app: Quart, settings: Settings, services: Services) -> TestApp:
    """``quart_app``'s lifespan as an async context manager (like ``app.test_app()``) with
    budgets that hold on a busy machine: start-up gets the managed OpenCode server's own
    start limit plus :data:`STARTUP_MARGIN_SECONDS`; shutdown gets each lifespan step's
    grace period plus :data:`SHUTDOWN_MARGIN_SECONDS`. A start-up that fails still fails at
    once (the budget only bounds a hang)."""
    startup = STARTUP_MARGIN_SECONDS
    if settings.opencode_enabled and settings.opencode_managed:
        startup += int(settings.opencode_start_timeout_seconds)
    steps = len(services.lifespan.names)
    shutdown = int(settings.shutdown_grace_seconds * steps) + SHUTDOWN_MARGIN_SECONDS
    return TestApp(quart_app, startup_timeout=startup, shutdown_timeout=shutdown)


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
    async with serving(quart_app, settings, services):
        yield quart_app.test_client(), services
