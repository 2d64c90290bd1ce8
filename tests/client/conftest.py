"""Client-test fixtures: the whole app under Hypercorn on loopback (a real HTTP server),
the scripted engine on, and an owner's token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from runtime.settings import Settings
from tests.support.live_server import hypercorn_app
from tests.support.seed import Seeded, Seeder
from web.services import Services


@dataclass
class Live:
    """A served app and an owner of a tenant in it."""

    base_url: str
    port: int
    owner: Seeded
    seeder: Seeder
    services: Services

    @property
    def token(self) -> str:
        return self.owner.headers["Authorization"].removeprefix("Bearer ")


@pytest.fixture
def settings(make_settings) -> Settings:
    return make_settings(scripted_engine_enabled=True)


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[Live]:
    async with hypercorn_app(settings) as (base, services):
        seeder = Seeder(services.db, services.jwt_secret)
        owner = await seeder.tenant_admin()
        yield Live(base, int(base.rsplit(":", 1)[1]), owner, seeder, services)
