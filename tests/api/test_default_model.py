"""The default model: an operator-configured endpoint becomes the global default chat
model at start-up; the local model never starts once an operator registered a model."""

from __future__ import annotations

from storage import models as models_store
from tests.support.api import create_app_via_api, running_app
from tests.support.fixtures_openai import scripted_openai  # noqa: F401
from tests.support.runs import create_run, wait_status
from tests.support.scripted_openai import text_reply
from tests.support.seed import Seeder


async def test_configured_endpoint_is_registered_and_updated(make_settings, scripted_openai):  # noqa: F811
    settings = make_settings(
        default_model_base_url=scripted_openai.base_url, default_model_id="scripted-model"
    )
    async with running_app(settings) as (client, services):
        owner = await Seeder(services.db, services.jwt_secret).tenant_admin()
        quart_app, _ = await create_app_via_api(client, owner.headers)
        scripted_openai.push(text_reply("hello from the configured model"))
        run = await create_run(client, quart_app["id"], owner.headers, input="hi")
        done = await wait_status(client, quart_app["id"], run["run_id"], owner.headers,
                                 {"completed", "failed"})  # fmt: skip
        assert done["status"] == "completed", done["error"]
        assert scripted_openai.bodies[0]["model"] == "scripted-model"

    moved = make_settings(default_model_base_url="http://127.0.0.1:9/v1",
                          default_model_id="other-model")  # fmt: skip
    async with running_app(moved) as (_, services):
        bindings = await models_store.bindings_by_provider(services.db, "runwright-configured")
        assert [(b.base_url, b.provider_model_id) for b in bindings] == [
            ("http://127.0.0.1:9/v1", "other-model")
        ]


async def test_local_model_does_not_start_when_an_operator_model_exists(make_settings):
    settings = make_settings()
    async with running_app(settings) as (_, services):
        await models_store.create_model(services.db, tenant_id=None, name="ops", is_default=True)
    autostart = make_settings(local_model_autostart=True)
    async with running_app(autostart) as (_, services):
        assert services.default_model.server is None
        assert services.default_model.problem is None
