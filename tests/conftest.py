"""Shared fixtures: a real Postgres, a per-test database, settings, the app and seeds.

- ``postgres_admin_dsn`` (session): DSN of a maintenance database on the test server
  (``DATABASE_URL`` or one embedded pgserver for the session).
- ``template_database`` (session): name of the migrated template database.
- ``database_url``: a fresh database cloned from the template, dropped after the test.
- ``make_settings`` / ``settings``: :class:`Settings` pointing at that database, ``data_dir``
  under ``tmp_path``, a fixed JWT secret, small pools, no local model autostart.
- ``services`` / ``app`` / ``client``: the real app built by ``create_app`` with its
  lifespan running (``tests.support.api.serving``: ``app.test_app()`` with
  budgets that hold on a busy machine), and a test client.
- ``db``: the app's :class:`Database` (direct repository calls in tests).
- ``seed``: a :class:`tests.support.seed.Seeder`; ``owner``: a tenant with an owner user
  and its headers (``owner.headers``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

from runtime.settings import Settings, load_settings
from storage.database import Database
from tests.support.api import serving
from tests.support.postgres import (
    clone_database,
    create_template,
    drop_database,
    postgres_server,
    run_sync,
    with_database,
)
from tests.support.sandbox import shared_deps_dir
from tests.support.seed import Seeded, Seeder
from web.app import create_app
from web.services import Services, build_services

TEST_JWT_SECRET = "test-secret-0123456789abcdef-0123456789abcdef"


@pytest.fixture(scope="session")
def postgres_admin_dsn() -> Iterator[str]:
    with postgres_server() as dsn:
        yield dsn


@pytest.fixture(scope="session")
def template_database(postgres_admin_dsn: str) -> Iterator[str]:
    name = run_sync(create_template(postgres_admin_dsn))
    assert isinstance(name, str)
    yield name
    run_sync(drop_database(postgres_admin_dsn, name))


@pytest.fixture
async def database_url(postgres_admin_dsn: str, template_database: str) -> AsyncIterator[str]:
    name = await clone_database(postgres_admin_dsn, template_database)
    try:
        yield with_database(postgres_admin_dsn, name)
    finally:
        await drop_database(postgres_admin_dsn, name)


@pytest.fixture
def make_settings(database_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Factory: ``make_settings(**overrides)`` -> Settings for this test's database."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "data_dir": tmp_path / "data",
            "jwt_secret": TEST_JWT_SECRET,
            "db_pool_min": 1,
            "db_pool_max": 4,
            "local_model_autostart": False,
            "shutdown_grace_seconds": 5.0,
            # The scripted model servers tenant models talk to listen on loopback, which the
            # default egress policy refuses (tests/security/ use that default).
            "egress_allowed_networks": ("127.0.0.0/8",),
            "deps_cache_dir": shared_deps_dir(),
        }
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def services(settings: Settings) -> Services:
    """The app's components (not started until ``app`` runs its lifespan)."""
    return build_services(settings)


@pytest.fixture
async def app(settings: Settings, services: Services) -> AsyncIterator[Quart]:
    """The app with its lifespan running; stopped after the test."""
    quart_app = create_app(settings, services=services)
    async with serving(quart_app, settings, services):
        yield quart_app


@pytest.fixture
def client(app: Quart) -> Any:
    return app.test_client()


@pytest.fixture
def db(app: Quart, services: Services) -> Database:
    return services.db


@pytest.fixture
def seed(db: Database, services: Services) -> Seeder:
    return Seeder(db, services.jwt_secret)


@pytest.fixture
async def owner(seed: Seeder) -> Seeded:
    """A new tenant with an owner; send ``owner.headers`` with requests."""
    return await seed.tenant_admin(role="owner")
