"""Model credentials an attacker would go for (issue 9 items 2 and 6, docs/security.md).

Through the public HTTP API against a real Postgres and real loopback servers: a tenant
cannot make the server send one of its environment variables (the JWT secret) anywhere; a
tenant's key is write-only, stored sealed and never echoed (responses, 422s, events, run
errors, logs); a global model's key variable must be allowed, and no error tells whether a
variable exists.
"""

from __future__ import annotations

import os
import stat
import uuid
from typing import Any

import pytest

from runtime.model_credentials import KEY_UNAVAILABLE, TENANT_KEY_ENV_REFUSED
from storage import models as models_store
from storage.models import BindingSpec
from tests.support import fixtures_openai
from tests.support.api import create_app_via_api
from tests.support.runs import create_run, read_stream, wait_status
from tests.support.scripted_openai import error_reply, text_reply

scripted_openai = fixtures_openai.scripted_openai

TENANT_KEY = "sk-tenant-9f8e7d6c5b4a3210-do-not-echo"
PRESENT_VAR = "RW_SECURITY_TEST_PRESENT_KEY"
ABSENT_VAR = "RW_SECURITY_TEST_ABSENT_KEY"


@pytest.fixture
def settings(make_settings):
    # Loopback stays allowed here (tests/conftest.py): these tests are about keys, so the
    # scripted model server must be reachable; tests/security/test_model_egress.py runs
    # with the default egress policy.
    return make_settings(model_key_env_allowlist=(ABSENT_VAR,))


@pytest.fixture
async def platform_admin(seed, owner):
    admin_id = await seed.user(platform_admin=True)
    return seed.headers_for(admin_id, owner.tenant_id, platform_admin=True, org_role=None)


def _binding(base_url: str, **extra: Any) -> dict[str, Any]:
    return {"provider": "openai", "provider_model_id": "scripted-model", "base_url": base_url,
            **extra}  # fmt: skip


async def _post_model(client, headers, binding: dict[str, Any], **body: Any):
    payload = {"name": f"m-{uuid.uuid4().hex[:6]}", "bindings": [binding], **body}
    return await client.post("/admin/models", json=payload, headers=headers)


async def _run_with(client, owner, model_id: str) -> tuple[dict[str, Any], str]:
    """A native run pinned to ``model_id``, waited until it ends: (run, its stream text)."""
    app, _ = await create_app_via_api(client, owner.headers)
    run = await create_run(client, app["id"], owner.headers, input="hi", model_id=model_id)
    done = await wait_status(client, app["id"], run["run_id"], owner.headers,
                             {"completed", "failed"}, within=60)  # fmt: skip
    text, _ = await read_stream(client, app["id"], run["run_id"], owner.headers, within=60)
    return done, text


async def test_a_tenant_cannot_name_a_server_variable_as_its_key(
    client,
    owner,
    settings,
    scripted_openai,
):
    """The attack of issue 9: api_key_env=RUNWRIGHT_JWT_SECRET on a tenant model, pointed
    at a server the tenant controls. Refused on POST and on PATCH."""
    binding = _binding(scripted_openai.base_url, api_key_env="RUNWRIGHT_JWT_SECRET")
    response = await _post_model(client, owner.headers, binding)
    assert response.status_code == 422
    detail = (await response.get_json())["detail"]
    assert [item["loc"] for item in detail] == [["body", "bindings", 0, "api_key_env"]]
    assert "tenant models cannot take their key" in detail[0]["msg"]

    created = await _post_model(client, owner.headers, _binding(scripted_openai.base_url))
    model = await created.get_json()
    response = await client.patch(f"/admin/models/{model['id']}", json={"bindings": [binding]},
                                  headers=owner.headers)  # fmt: skip
    assert response.status_code == 422
    listed = await (await client.get("/admin/models", headers=owner.headers)).get_json()
    assert [b["api_key_env"] for m in listed for b in m["bindings"]] == [None]
    assert scripted_openai.requests == []
    assert settings.jwt_secret not in (await response.get_data(as_text=True))


async def test_a_tenant_binding_left_with_a_variable_is_refused_at_run_time(
    client,
    db,
    owner,
    settings,
    scripted_openai,
    caplog,
):
    """A tenant binding naming a variable from before migration 0003 is refused when a
    run starts: nothing is read from the environment and nothing reaches the endpoint."""
    model, _ = await models_store.create_model(
        db, tenant_id=owner.tenant_id, name="legacy",
        bindings=[BindingSpec("openai", "scripted-model", scripted_openai.base_url,
                              api_key_env="RUNWRIGHT_JWT_SECRET")],
    )  # fmt: skip
    scripted_openai.push(text_reply("must not be asked"))
    run, stream = await _run_with(client, owner, str(model.id))
    assert run["status"] == "failed"
    assert TENANT_KEY_ENV_REFUSED in run["error"]
    assert scripted_openai.requests == []
    for text in (run["error"], stream, caplog.text):
        assert settings.jwt_secret not in text


async def test_a_tenant_key_is_write_only_sealed_and_never_echoed(
    client,
    db,
    owner,
    services,
    settings,
    scripted_openai,
    caplog,
):
    keyed = _binding(scripted_openai.base_url, api_key=TENANT_KEY)
    response = await _post_model(client, owner.headers, keyed)
    assert response.status_code == 200
    body = await response.get_data(as_text=True)
    model = await response.get_json()
    assert model["bindings"][0]["has_api_key"] is True
    listed = await client.get("/admin/models", headers=owner.headers)
    for text in (body, await listed.get_data(as_text=True)):
        assert TENANT_KEY not in text and '"api_key"' not in text

    # Encrypted at rest: the row holds no plaintext, under a key file only the owner reads.
    stored = await models_store.list_bindings(db, [uuid.UUID(model["id"])])
    sealed = stored[uuid.UUID(model["id"])][0].api_key_ciphertext
    assert sealed is not None and TENANT_KEY.encode() not in sealed
    key_file = settings.data_dir / "secrets_key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600

    # The key works: the run sends it to the tenant's endpoint, and only there.
    scripted_openai.push(text_reply("hello"))
    run, stream = await _run_with(client, owner, model["id"])
    assert run["status"] == "completed", run["error"]
    assert scripted_openai.requests[-1].headers["authorization"] == f"Bearer {TENANT_KEY}"
    assert TENANT_KEY not in stream and TENANT_KEY not in caplog.text


async def test_validation_errors_never_echo_the_key(client, owner, scripted_openai):
    broken = _binding(scripted_openai.base_url, api_key=TENANT_KEY)
    del broken["provider"]  # the 422 for this field echoes the binding object
    both = _binding(scripted_openai.base_url, api_key=TENANT_KEY, api_key_env="X")
    too_long = _binding(scripted_openai.base_url, api_key=TENANT_KEY * 200)
    for binding in (broken, both, too_long):
        response = await _post_model(client, owner.headers, binding)
        assert response.status_code == 422
        assert TENANT_KEY not in await response.get_data(as_text=True)


async def test_an_upstream_echoing_the_key_is_redacted_in_the_run_error(
    client,
    owner,
    scripted_openai,
):
    keyed = _binding(scripted_openai.base_url, api_key=TENANT_KEY)
    response = await _post_model(client, owner.headers, keyed)
    model = await response.get_json()
    scripted_openai.push(error_reply(401, f"Incorrect API key provided: {TENANT_KEY}"))
    run, stream = await _run_with(client, owner, model["id"])
    assert run["status"] == "failed"
    assert "answered HTTP 401" in run["error"] and "[redacted]" in run["error"]
    assert TENANT_KEY not in run["error"] and TENANT_KEY not in stream


async def test_patch_keeps_a_key_only_for_the_same_endpoint(
    client,
    db,
    owner,
    scripted_openai,
):
    """A binding replaced without ``api_key`` keeps the sealed key of the binding with the
    same base_url; a key never follows a binding to another endpoint; null clears it."""
    created = await _post_model(client, owner.headers,
                                _binding(scripted_openai.base_url, api_key=TENANT_KEY))  # fmt: skip
    model = await created.get_json()
    url = f"/admin/models/{model['id']}"

    async def patch(binding):
        response = await client.patch(url, json={"bindings": [binding]}, headers=owner.headers)
        assert response.status_code == 200, await response.get_data(as_text=True)
        return (await response.get_json())["bindings"][0]["has_api_key"]

    assert await patch(_binding(scripted_openai.base_url, priority=3)) is True
    scripted_openai.push(text_reply("still keyed"))
    run, _ = await _run_with(client, owner, model["id"])
    assert run["status"] == "completed", run["error"]
    assert scripted_openai.requests[-1].headers["authorization"] == f"Bearer {TENANT_KEY}"

    elsewhere = scripted_openai.base_url.replace("/v1", "/v2")
    assert await patch(_binding(elsewhere)) is False
    assert await patch(_binding(scripted_openai.base_url, api_key="sk-new")) is True
    assert await patch(_binding(scripted_openai.base_url, api_key=None)) is False


async def test_global_key_variables_must_be_allowed_and_existence_is_not_revealed(
    client,
    db,
    owner,
    platform_admin,
    scripted_openai,
    monkeypatch,
):
    """Only operator-allowed names; "not allowed" and "not set" read the same, at
    registration and at run time, whether or not the variable exists."""
    monkeypatch.setenv(PRESENT_VAR, "sk-present-value-must-not-leak")
    monkeypatch.delenv(ABSENT_VAR, raising=False)
    answers = []
    for name in (PRESENT_VAR, "RUNWRIGHT_JWT_SECRET", "RW_SECURITY_TEST_NEVER_SET"):
        response = await _post_model(client, platform_admin,
                                     _binding(scripted_openai.base_url, api_key_env=name),
                                     scope="global")  # fmt: skip
        assert response.status_code == 422
        answers.append([(i["loc"], i["msg"]) for i in (await response.get_json())["detail"]])
    assert answers[0] == answers[1] == answers[2]

    # At run time: a stored binding naming a present but not-allowed variable, and an
    # allowed but unset one, fail with one and the same message; nothing is sent.
    present, _ = await models_store.create_model(
        db, tenant_id=None, name="present",
        bindings=[BindingSpec("openai", "scripted-model", scripted_openai.base_url,
                              api_key_env=PRESENT_VAR)],
    )  # fmt: skip
    allowed = await _post_model(client, platform_admin,
                                _binding(scripted_openai.base_url, api_key_env=ABSENT_VAR),
                                scope="global")  # fmt: skip
    assert allowed.status_code == 200
    errors = []
    for model_id in (str(present.id), (await allowed.get_json())["id"]):
        run, stream = await _run_with(client, owner, model_id)
        assert run["status"] == "failed"
        assert "sk-present-value-must-not-leak" not in run["error"] + stream
        errors.append(run["error"])
    assert errors[0] == errors[1] and KEY_UNAVAILABLE in errors[0]
    assert PRESENT_VAR not in errors[0] and ABSENT_VAR not in errors[0]
    assert scripted_openai.requests == []

    # Allowed and set: the operator's key is sent.
    monkeypatch.setenv(ABSENT_VAR, "sk-operator-key")
    scripted_openai.push(text_reply("hello"))
    run, _ = await _run_with(client, owner, (await allowed.get_json())["id"])
    assert run["status"] == "completed", run["error"]
    assert scripted_openai.requests[-1].headers["authorization"] == "Bearer sk-operator-key"
