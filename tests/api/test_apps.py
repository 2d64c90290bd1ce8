"""Apps, builder state and draft revisions (contract sections 1.2 step 3 and 8)."""

from __future__ import annotations

import hashlib
import json
import uuid

from runtime.project import load_template
from tests.support.api import create_app_via_api

REVISION_FIELDS = {
    "id", "published_app_id", "kind", "template_key", "entry_file", "files", "build_status",
    "build_seq", "build_error", "build_started_at", "build_finished_at", "dist_storage_prefix",
    "dist_manifest", "template_runtime", "compiled_bundle", "bundle_hash",
    "source_revision_id", "created_by", "created_at",
}  # fmt: skip


def _sha(files):
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


async def _post_revision(client, app_id, headers, **body):
    return await client.post(f"/admin/apps/{app_id}/builder/revisions", json=body, headers=headers)


async def test_create_app_makes_revision_one_and_points_the_draft_at_it(client, owner):
    app, draft = await create_app_via_api(client, owner.headers, slug="my-chat")
    assert app["slug"] == "my-chat"
    assert app["tenant_id"] == str(owner.tenant_id)
    assert app["template_key"] == "chat-classic"
    assert app["current_draft_revision_id"] == draft["id"]
    assert set(draft) == REVISION_FIELDS
    assert draft["build_seq"] == 1
    assert draft["kind"] == "draft"
    assert draft["build_status"] == "queued"
    assert draft["source_revision_id"] is None
    assert draft["entry_file"] == "src/main.tsx"
    assert draft["template_runtime"] == "vite_static"
    assert draft["files"] == load_template("chat-classic")
    assert draft["bundle_hash"] == _sha(draft["files"])
    assert draft["created_by"] == str(owner.user_id)
    assert draft["created_at"].endswith("+00:00")


async def test_duplicate_slug_is_409(client, seed, owner):
    await create_app_via_api(client, owner.headers, slug="taken")
    other = await seed.tenant_admin()
    response = await client.post(
        "/admin/apps", json={"name": "x", "slug": "taken"}, headers=other.headers
    )
    assert response.status_code == 409
    assert (await response.get_json())["detail"] == "App slug already exists"


async def test_unknown_template_is_400(client, owner):
    response = await client.post(
        "/admin/apps",
        json={"name": "x", "slug": "x1", "template_key": "no-such-template"},
        headers=owner.headers,
    )
    assert response.status_code == 400
    assert (await response.get_json())["detail"] == {
        "code": "BUILDER_TEMPLATE_NOT_FOUND",
        "field": "template_key",
        "message": "Unknown template: no-such-template",
    }


async def test_list_and_get_apps(client, owner):
    first, _ = await create_app_via_api(client, owner.headers)
    second, _ = await create_app_via_api(client, owner.headers)
    listed = await (await client.get("/admin/apps", headers=owner.headers)).get_json()
    assert [a["id"] for a in listed] == [second["id"], first["id"]]
    got = await client.get(f"/admin/apps/{first['id']}", headers=owner.headers)
    assert await got.get_json() == first


async def test_unknown_app_is_404(client, owner):
    response = await client.get(f"/admin/apps/{uuid.uuid4()}", headers=owner.headers)
    assert response.status_code == 404
    assert (await response.get_json())["detail"] == "Published app not found"


async def test_new_revision_chains_on_the_draft(client, owner):
    app, draft = await create_app_via_api(client, owner.headers)
    files = {**draft["files"], "src/extra.ts": "export const x = 1;\n"}
    response = await _post_revision(
        client, app["id"], owner.headers, files=files, base_revision_id=draft["id"]
    )
    assert response.status_code == 200
    revision = await response.get_json()
    assert revision["build_seq"] == 2
    assert revision["source_revision_id"] == draft["id"]
    assert revision["files"] == files
    assert revision["bundle_hash"] == _sha(files)
    state = await client.get(f"/admin/apps/{app['id']}/builder/state", headers=owner.headers)
    assert (await state.get_json())["current_draft_revision"]["id"] == revision["id"]
    old = await client.get(
        f"/admin/apps/{app['id']}/revisions/{draft['id']}", headers=owner.headers
    )
    assert (await old.get_json())["files"] == draft["files"]  # revisions are immutable


async def test_stale_base_revision_is_409_revision_conflict(client, owner):
    app, draft = await create_app_via_api(client, owner.headers)
    newer = await _post_revision(client, app["id"], owner.headers, files=draft["files"])
    latest = await newer.get_json()
    for stale in (draft["id"], str(uuid.uuid4())):
        response = await _post_revision(
            client, app["id"], owner.headers, files=draft["files"], base_revision_id=stale
        )
        assert response.status_code == 409
        assert (await response.get_json())["detail"] == {
            "code": "REVISION_CONFLICT",
            "latest_revision_id": latest["id"],
            "latest_updated_at": latest["created_at"],
            "message": "Draft revision is stale",
        }


async def test_revision_of_another_app_is_404(client, owner):
    app, _ = await create_app_via_api(client, owner.headers)
    _, other_draft = await create_app_via_api(client, owner.headers)
    response = await client.get(
        f"/admin/apps/{app['id']}/revisions/{other_draft['id']}", headers=owner.headers
    )
    assert response.status_code == 404
    assert (await response.get_json())["detail"] == "Revision not found"


async def test_missing_entry_file_is_422(client, owner):
    app, _ = await create_app_via_api(client, owner.headers)
    response = await _post_revision(
        client, app["id"], owner.headers, files={"src/App.tsx": "export {};\n"}
    )
    assert response.status_code == 422
    assert (await response.get_json())["detail"] == {
        "code": "BUILDER_COMPILE_FAILED",
        "message": "Entry file does not exist in project",
        "diagnostics": [{"path": "src/main.tsx", "message": "Entry file is missing"}],
    }


async def test_unresolved_import_is_422_with_diagnostics(client, owner):
    app, draft = await create_app_via_api(client, owner.headers)
    files = {**draft["files"], "src/main.tsx": 'import { Gone } from "./Gone";\n'}
    response = await _post_revision(client, app["id"], owner.headers, files=files)
    assert response.status_code == 422
    detail = (await response.get_json())["detail"]
    assert detail["code"] == "BUILDER_COMPILE_FAILED"
    assert detail["message"] == "Project validation failed"
    assert detail["diagnostics"] == [
        {"path": "src/main.tsx", "message": "Cannot resolve import './Gone'"}
    ]


async def test_path_policy_violation_is_400(client, owner):
    app, draft = await create_app_via_api(client, owner.headers)
    for bad, message in (
        ("../escape.ts", "Path traversal is not allowed"),
        ("/etc/passwd.ts", "Absolute paths are not allowed"),
        ("node_modules/x.js", "File path is blocked by policy: node_modules/"),
        ("src/tool.py", "Unsupported file extension: .py"),
    ):
        files = {**draft["files"], bad: "x"}
        response = await _post_revision(client, app["id"], owner.headers, files=files)
        assert response.status_code == 400, bad
        assert (await response.get_json())["detail"] == {
            "code": "BUILDER_PATCH_POLICY_VIOLATION",
            "message": message,
            "field": "files",
        }


async def test_size_limits_are_400_on_field_files(client, make_settings, owner, app):
    app_json, draft = await create_app_via_api(client, owner.headers)
    big = "x" * (256 * 1024 + 1)
    response = await _post_revision(
        client, app_json["id"], owner.headers, files={**draft["files"], "src/big.txt": big}
    )
    assert response.status_code == 400
    detail = (await response.get_json())["detail"]
    assert detail["code"] == "BUILDER_PATCH_POLICY_VIOLATION"
    assert detail["field"] == "files"
    assert detail["message"].startswith("File is too large: src/big.txt")
    # The same size is fine for a lockfile (its own 2 MiB limit).
    response = await _post_revision(
        client, app_json["id"], owner.headers, files={**draft["files"], "package-lock.json": big}
    )
    assert response.status_code == 200
