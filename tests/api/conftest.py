"""API-test fixtures: an owner, an app, and the scripted engine switched on; an app whose
tenant's default model is the scripted OpenAI server (``native_app``)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from storage import models as models_store
from storage.models import BindingSpec
from tests.support.api import create_app_via_api
from tests.support.approvals import PausedRun, paused
from tests.support.fixtures_openai import scripted_openai  # noqa: F401 (a fixture)
from tests.support.openai_script import call, text_reply
from tests.support.patches import heading_patch


@pytest.fixture
def settings(make_settings):
    return make_settings(scripted_engine_enabled=True)


@pytest.fixture
async def app_and_draft(client, owner) -> tuple[dict[str, Any], dict[str, Any]]:
    return await create_app_via_api(client, owner.headers)


@pytest.fixture
def make_model(db):
    """``await make_model(tenant_id, default=..., base_url=...)`` -> model id."""

    async def make(
        tenant_id: uuid.UUID | None,
        *,
        default: bool = False,
        status: str = "active",
        base_url: str = "http://127.0.0.1:9/v1",
    ) -> uuid.UUID:
        model, _ = await models_store.create_model(
            db,
            tenant_id=tenant_id,
            name=f"m-{uuid.uuid4().hex[:6]}",
            is_default=default,
            status=status,  # type: ignore[arg-type]
            bindings=[BindingSpec(provider="openai", provider_model_id="m", base_url=base_url)],
        )
        return model.id

    return make


@pytest.fixture
async def native_app(
    client,
    owner,
    make_model,
    scripted_openai,  # noqa: F811
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(app, draft)`` of an app whose tenant's default model is ``scripted_openai``
    (native runs on it ask the scripted server)."""
    await make_model(owner.tenant_id, default=True, base_url=scripted_openai.base_url)
    return await create_app_via_api(client, owner.headers)


@pytest.fixture
async def paused_on_patch(client, owner, native_app, scripted_openai) -> PausedRun:  # noqa: F811
    """A native run on ``native_app`` (policy ``patches``) paused on the model's
    ``apply_patch`` of ``heading_patch("Runwright Chat")``; the model's next turn is
    queued: "Done with your version.". Push more replies before deciding if needed."""
    app, _ = native_app
    scripted_openai.push(
        call("coding_agent_apply_patch", patch=heading_patch("Runwright Chat")),
        text_reply("Done with your version."),
    )
    run, events = await paused(client, app, owner, input="Rename", approval_policy="patches")
    return PausedRun(app, run, events, events[-2]["data"]["payload"]["request_id"])
