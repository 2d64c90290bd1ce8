"""Security-suite fixtures (issue 9 item 6): the scripted engine on, like the API tests."""

from __future__ import annotations

import pytest

from tests.support.api import create_app_via_api


@pytest.fixture
def settings(make_settings):
    return make_settings(scripted_engine_enabled=True)


@pytest.fixture
async def app_and_draft(client, owner):
    """An app of ``owner``'s tenant and its first draft: ``(app, draft)`` as JSON."""
    return await create_app_via_api(client, owner.headers)
