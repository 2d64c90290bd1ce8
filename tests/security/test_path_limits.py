"""Revision file paths are bounded (issue 9 item 5): a path segment of at most 255 UTF-8
bytes (Linux's NAME_MAX), a whole path of at most 1,024. Longer ones are refused with 400
``BUILDER_PATCH_POLICY_VIOLATION`` where they enter (revision creation, restore, patch), and a
revision that holds one anyway (stored before the rule) fails its runs without showing the
server's paths."""

from __future__ import annotations

import uuid

import pytest

from runtime.paths import MAX_PATH_BYTES, MAX_SEGMENT_BYTES, PathPolicyError, normalize_path
from runtime.tools import Toolpack
from runtime.workspace import Workspace
from storage import apps as apps_repo
from storage import models as models_store
from storage.models import BindingSpec
from tests.support.api import create_app_via_api
from tests.support.fixtures_openai import scripted_openai  # noqa: F401
from tests.support.runs import read_stream, runs_url, wait_status
from tests.support.scripted_openai import ScriptedOpenAI, ScriptedToolCall, tool_call_reply
from tests.unit.toolpack_fixtures import make_context, make_settings

LONG_NAME = "a" * (MAX_SEGMENT_BYTES - 3 + 1) + ".ts"  # 256 bytes
LONGEST_NAME = "b" * (MAX_SEGMENT_BYTES - 3) + ".ts"  # 255 bytes
WIDE_NAME = "é" * 127 + ".ts"  # 127 characters of 2 bytes + 3 = 257 bytes


def test_normalize_path_counts_utf8_bytes() -> None:
    assert normalize_path(f"src/{LONGEST_NAME}") == f"src/{LONGEST_NAME}"
    for bad in (f"src/{LONG_NAME}", f"src/{WIDE_NAME}", "d" * 256 + "/x.ts"):
        with pytest.raises(PathPolicyError, match="File name is too long"):
            normalize_path(bad)
    longest = "/".join(["c" * 200] * 5) + "/" + "x" * 16 + ".ts"
    assert len(longest.encode()) == MAX_PATH_BYTES
    assert normalize_path(longest) == longest
    with pytest.raises(PathPolicyError, match="File path is too long"):
        normalize_path("c" + longest)


def _project(extra: dict[str, str]) -> dict[str, str]:
    return {
        "index.html": "<div id=root></div>",
        "src/main.tsx": "console.log('hi')\n",
        **extra,
    }


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (f"src/{LONG_NAME}", "File name is too long"),
        (f"src/{WIDE_NAME}", "File name is too long"),
        ("/".join(["c" * 200] * 6) + "/x.ts", "File path is too long"),
    ],
)
async def test_revision_with_too_long_path_is_400(client, owner, path, message) -> None:
    app, draft = await create_app_via_api(client, owner.headers)
    response = await client.post(
        f"/admin/apps/{app['id']}/builder/revisions",
        json={"files": _project({path: "export {}\n"}), "entry_file": "src/main.tsx"},
        headers=owner.headers,
    )
    assert response.status_code == 400
    detail = (await response.get_json())["detail"]
    assert detail["code"] == "BUILDER_PATCH_POLICY_VIOLATION"
    assert detail["field"] == "files"
    assert detail["message"].startswith(message)
    state = await client.get(f"/admin/apps/{app['id']}/builder/state", headers=owner.headers)
    assert (await state.get_json())["current_draft_revision"]["id"] == draft["id"]


async def test_longest_allowed_name_is_stored(client, owner) -> None:
    app, _ = await create_app_via_api(client, owner.headers)
    response = await client.post(
        f"/admin/apps/{app['id']}/builder/revisions",
        json={"files": _project({f"src/{LONGEST_NAME}": "x\n"}), "entry_file": "src/main.tsx"},
        headers=owner.headers,
    )
    assert response.status_code == 200, await response.get_data(as_text=True)
    assert f"src/{LONGEST_NAME}" in (await response.get_json())["files"]


async def _store_unchecked(db, app: dict, owner, name: str) -> apps_repo.Revision:
    """A revision holding ``name``, written past the validation (as before the rule)."""
    return await apps_repo.create_draft_revision(
        db,
        app_id=uuid.UUID(app["id"]),
        tenant_id=owner.tenant_id,
        files=_project({f"src/{name}": "export {}\n"}),
        entry_file="src/main.tsx",
    )


async def test_restore_of_revision_with_too_long_path_is_400(client, db, owner) -> None:
    app, _ = await create_app_via_api(client, owner.headers)
    bad = await _store_unchecked(db, app, owner, LONG_NAME)
    response = await client.post(
        f"/admin/apps/{app['id']}/coding-agent/checkpoints/{bad.id}/restore",
        json={},
        headers=owner.headers,
    )
    assert response.status_code == 400
    detail = (await response.get_json())["detail"]
    assert detail["code"] == "BUILDER_PATCH_POLICY_VIOLATION"
    assert detail["message"].startswith("File name is too long")


async def test_patch_creating_too_long_name_is_a_policy_failure(tmp_path) -> None:
    settings = make_settings(tmp_path)
    workspace = Workspace(settings.runs_dir / "run" / str(uuid.uuid4()))
    workspace.materialise({"src/App.tsx": "x\n"})
    patch = f"--- /dev/null\n+++ b/src/{LONG_NAME}\n@@ -0,0 +1 @@\n+export const x = 1\n"
    out = await Toolpack(settings).call(
        "coding_agent_apply_patch", {"patch": patch}, make_context(workspace)
    )
    assert out.get("ok") is not True
    assert "too long" in str(out).lower()
    assert str(tmp_path) not in str(out)
    assert not any(len(p.name.encode()) > MAX_SEGMENT_BYTES for p in workspace.root.rglob("*"))


async def _model_that_lists_files(db, owner, server: ScriptedOpenAI) -> None:
    """The tenant's default model asks for the file list first: the native engine makes a
    run's workspace at its first tool call, so the call is what prepares it."""
    await models_store.create_model(
        db,
        tenant_id=owner.tenant_id,
        name="lister",
        is_default=True,
        bindings=[BindingSpec(provider="openai", provider_model_id="scripted-model",
                              base_url=server.base_url)],
    )  # fmt: skip
    server.push(tool_call_reply(ScriptedToolCall("coding_agent_list_files")))


async def test_run_on_a_revision_with_too_long_name_shows_no_server_path(
    client,
    db,
    owner,
    settings,
    scripted_openai,  # noqa: F811
) -> None:
    """The run fails with the policy's message (the name cannot be created), and neither its
    error nor its event stream names a server path."""
    app, _ = await create_app_via_api(client, owner.headers)
    await _store_unchecked(db, app, owner, LONG_NAME)
    await _model_that_lists_files(db, owner, scripted_openai)
    created = await client.post(
        runs_url(app["id"]), json={"input": "hello", "engine": "native"}, headers=owner.headers
    )
    assert created.status_code == 200, await created.get_data(as_text=True)
    run_id = (await created.get_json())["run_id"]
    run = await wait_status(client, app["id"], run_id, owner.headers, {"failed"}, within=60)
    text, events = await read_stream(client, app["id"], run_id, owner.headers)
    assert run["error"].startswith("File name is too long")
    data_dir = str(settings.data_dir)
    for shown in (run["error"], text):
        assert data_dir not in shown
        assert str(settings.data_dir.resolve()) not in shown
    assert events[-1]["data"]["event"] == "run.failed"


async def test_run_failing_on_an_os_error_shows_no_server_path(
    client,
    db,
    owner,
    settings,
    scripted_openai,  # noqa: F811
) -> None:
    """A real OSError while the run prepares its workspace (a file stands where the
    revision cache's directory must go) fails the run; its error keeps the errno text and
    loses the absolute path."""
    app, _ = await create_app_via_api(client, owner.headers)
    await _model_that_lists_files(db, owner, scripted_openai)
    blocker = settings.runs_dir / "revisions"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a directory")
    created = await client.post(
        runs_url(app["id"]), json={"input": "hello", "engine": "native"}, headers=owner.headers
    )
    assert created.status_code == 200, await created.get_data(as_text=True)
    run_id = (await created.get_json())["run_id"]
    run = await wait_status(client, app["id"], run_id, owner.headers, {"failed"}, within=60)
    text, _ = await read_stream(client, app["id"], run_id, owner.headers)
    assert "[Errno" in run["error"], run["error"]
    for shown in (run["error"], text):
        assert str(settings.data_dir) not in shown
        assert str(settings.data_dir.resolve()) not in shown
