"""The cross-tenant matrix on every route (issue 9 item 6).

Tenant A owns an app, its revisions, a finished run with a checkpoint and a model. Tenant
B's owner, a legitimate user of the same service, aims every route of the API at A's ids.
The routes come from the app's URL map, not from a list here: a route added later is in
the matrix at once (and fails it until its id parameter is known to :data:`A_IDS`' map).

Expected, per contract 9: B is answered 404 (A's app, run, revision, checkpoint or model
does not exist *for B*) or 403, the body is an error and names none of A's ids or data;
B's lists show nothing of A's; B acting under A's ``X-Tenant-ID`` is refused 403; a stream
ticket for B's run opens nothing of A's; and afterwards A's data is exactly as before.
"""

from __future__ import annotations

import json
from typing import Any

from werkzeug.routing import Rule

from storage import models as models_store
from storage.models import BindingSpec
from tests.support.api import create_app_via_api
from tests.support.runs import create_run, read_stream, runs_url
from web.validation import UUIDConverter

SKIP_METHODS = {"HEAD", "OPTIONS"}
NOT_FOUND_DETAILS = {
    "Published app not found",
    "Coding-agent run not found",
    "Revision not found",
    "Model not found",
    "Coding-agent session not found",
}


def _bodies(a: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """A valid body per route that takes one (by endpoint suffix), so nothing but the
    tenant boundary can refuse B; other routes get ``{}``."""
    return {
        ("POST", "create_run"): {
            "input": "steal",
            "engine": "scripted",
            "script": [{"delta": "x"}],
        },  # fmt: skip
        ("POST", "create_revision"): {"files": a["draft"]["files"]},
        ("POST", "restore"): {"run_id": a["run_id"]},
        ("POST", "resume_run"): {"payload": {}},
        ("PATCH", "patch_model"): {"is_default": True, "status": "disabled"},
    }


def _id_rules(app: Any) -> list[Rule]:
    """Every route with a UUID path parameter (the routes that address tenant data)."""
    return [
        rule
        for rule in app.url_map.iter_rules()
        if any(isinstance(c, UUIDConverter) for c in rule._converters.values())
    ]


async def _tenant_a(client: Any, db: Any, seed: Any) -> tuple[Any, dict[str, Any]]:
    owner = await seed.tenant_admin(role="owner")
    app, draft = await create_app_via_api(client, owner.headers, name="A-secret-app")
    model, _ = await models_store.create_model(
        db, tenant_id=owner.tenant_id, name="A-secret-model",
        bindings=[BindingSpec(provider="openai", provider_model_id="a-model",
                              base_url="http://127.0.0.1:9/v1")],
    )  # fmt: skip
    session = await client.post(
        f"/admin/apps/{app['id']}/coding-agent/sessions",
        json={"title": "A-secret-session"},
        headers=owner.headers,
    )
    assert session.status_code == 200, await session.get_data(as_text=True)
    session_id = (await session.get_json())["session_id"]
    run = await create_run(client, app["id"], owner.headers, input="A-secret-prompt",
                           engine="scripted", script=[{"delta": "A-secret-answer"}],
                           session_id=session_id)  # fmt: skip
    await read_stream(client, app["id"], run["run_id"], owner.headers)  # until it completes
    restored = await client.post(
        f"/admin/apps/{app['id']}/coding-agent/checkpoints/{draft['id']}/restore",
        json={"run_id": run["run_id"]},
        headers=owner.headers,
    )
    assert restored.status_code == 200, await restored.get_data(as_text=True)
    ids = {
        "app_id": app["id"],
        "revision_id": draft["id"],
        "checkpoint_id": draft["id"],
        "run_id": run["run_id"],
        "model_id": str(model.id),
        "session_id": session_id,
        "draft": draft,
    }
    return owner, ids


async def _snapshot(client: Any, owner: Any, ids: dict[str, Any]) -> dict[str, Any]:
    """What A sees of its own data (compared before and after B's attempts)."""
    app_id = ids["app_id"]
    out = {}
    for name, path in {
        "state": f"/admin/apps/{app_id}/builder/state",
        "runs": runs_url(app_id),
        "checkpoints": f"/admin/apps/{app_id}/coding-agent/checkpoints",
        "models": "/admin/models",
        "session": f"/admin/apps/{app_id}/coding-agent/sessions/{ids['session_id']}",
    }.items():
        response = await client.get(path, headers=owner.headers)
        assert response.status_code == 200, path
        out[name] = await response.get_json()
    return out


def _secrets(ids: dict[str, Any]) -> list[str]:
    words = [v for k, v in ids.items() if k != "draft"]
    return [*words, "A-secret-app", "A-secret-model", "A-secret-prompt", "A-secret-answer",
            "A-secret-session"]  # fmt: skip


async def test_tenant_b_reaches_nothing_of_tenant_a_on_any_route(app, client, db, seed):
    owner_a, ids = await _tenant_a(client, db, seed)
    owner_b = await seed.tenant_admin(role="owner")
    await create_app_via_api(client, owner_b.headers)  # B is a real tenant with data
    before = await _snapshot(client, owner_a, ids)
    secrets = _secrets(ids)
    bodies = _bodies(ids)

    rules = _id_rules(app)
    unknown = sorted({name for rule in rules for name in rule.arguments} - set(ids))
    assert not unknown, f"add these path parameters to the cross-tenant matrix: {unknown}"
    tried = []
    for rule in rules:
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<uuid:{name}>", ids[name])
        for method in sorted((rule.methods or set()) - SKIP_METHODS):
            endpoint = rule.endpoint.rsplit(".", 1)[-1]
            body = bodies.get((method, endpoint), {} if method in ("POST", "PATCH") else None)
            for headers, expected in (
                (owner_b.headers, {403, 404}),
                # B naming A's tenant: not a member.
                ({**owner_b.headers, "X-Tenant-ID": str(owner_a.tenant_id)}, {403}),
            ):
                response = await client.open(path, method=method, headers=headers, json=body)
                text = await response.get_data(as_text=True)
                what = f"{method} {rule.rule} as B"
                assert response.status_code in expected, f"{what}: {response.status_code} {text}"
                detail = json.loads(text)["detail"]
                if response.status_code == 404:
                    assert detail in NOT_FOUND_DETAILS, f"{what}: {detail!r}"
                for secret in secrets:
                    assert secret not in text, f"{what} shows {secret}"
            tried.append(f"{method} {rule.rule}")
    assert len(tried) >= 14, tried
    # Every kind of route the issue names is in the matrix.
    for needle in ("/revisions/", "/builder/revisions", "/runs/<uuid:run_id>/stream",
                   "/cancel", "/resume", "/checkpoints", "/restore", "/admin/models/",
                   "/sessions/<uuid:session_id>"):  # fmt: skip
        assert any(needle in t for t in tried), needle

    # B's lists show only B's things.
    for path in ("/admin/apps", "/admin/models"):
        text = await (await client.get(path, headers=owner_b.headers)).get_data(as_text=True)
        for secret in secrets:
            assert secret not in text, f"GET {path} as B shows {secret}"

    # Nothing B did changed A's data.
    assert await _snapshot(client, owner_a, ids) == before


async def test_stream_ticket_of_one_tenant_opens_nothing_of_another(client, db, seed):
    owner_a, ids = await _tenant_a(client, db, seed)
    owner_b = await seed.tenant_admin(role="owner")
    app_b, _ = await create_app_via_api(client, owner_b.headers)
    run_b = await create_run(client, app_b["id"], owner_b.headers, input="b",
                             engine="scripted", script=[{"delta": "b"}])  # fmt: skip
    issued = await client.post(
        runs_url(app_b["id"], f"/{run_b['run_id']}/stream-ticket"), headers=owner_b.headers
    )
    assert issued.status_code == 200
    ticket = (await issued.get_json())["ticket"]
    for app_id, run_id in ((ids["app_id"], ids["run_id"]), (app_b["id"], ids["run_id"]),
                           (ids["app_id"], run_b["run_id"])):  # fmt: skip
        response = await client.get(runs_url(app_id, f"/{run_id}/stream?ticket={ticket}"))
        text = await response.get_data(as_text=True)
        assert response.status_code in (401, 404), text
        for secret in _secrets(ids):
            assert secret not in text
