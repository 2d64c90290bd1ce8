"""A run paused on an approval survives its process: real ``runwright serve`` processes,
the first killed with SIGKILL while the run waits, the decision sent to a second one (another
node id and another data directory, so no workspace of the first); the run continues from
the state kept in Postgres, workspace included, without asking the model again for the turns
already done (issue 12 items 2 and 6)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from storage import models as models_store
from storage.database import Database
from storage.models import BindingSpec
from tests.support.fixtures_openai import scripted_openai  # noqa: F401
from tests.support.patches import heading_patch
from tests.support.runs import parse_sse
from tests.support.scripted_openai import (
    ScriptedOpenAI,
    ScriptedToolCall,
    text_reply,
    tool_call_reply,
)
from tests.support.seed import Seeder
from tests.support.serve_process import free_port, serve

SECRET = "e2e-secret-0123456789abcdef-0123456789abcdef"
PATCH = heading_patch("Approved Chat")
STYLE = """\
--- a/src/styles.css
+++ b/src/styles.css
@@ -1,4 +1,4 @@
 :root {
   font-family: system-ui, -apple-system, "Segoe UI", sans-serif;
-  color: #1f2328;
+  color: #102030;
   background: #f6f8fa;
"""


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "RUNWRIGHT_DATA_DIR": str(tmp_path / "data-a"),
        "RUNWRIGHT_JWT_SECRET": SECRET,
        "RUNWRIGHT_LOCAL_MODEL_AUTOSTART": "0",
    }


async def _events(http: httpx.AsyncClient, url: str, after: int = 0) -> list[dict[str, Any]]:
    response = await http.get(f"{url}/stream", params={"after": after}, timeout=60)
    assert response.status_code == 200, response.text
    return parse_sse(response.text)


async def test_a_paused_run_resumes_on_another_process_after_a_kill(
    env: dict[str, str],
    database_url: str,
    tmp_path: Path,
    scripted_openai: ScriptedOpenAI,  # noqa: F811
) -> None:
    db = await Database.connect(database_url, min_size=1, max_size=2)
    try:
        owner = await Seeder(db, SECRET).tenant_admin()
        # An operator model: tenant models may not point at loopback (egress policy).
        await models_store.create_model(
            db, tenant_id=None, name="scripted", is_default=True, status="active",
            bindings=[BindingSpec(provider="openai", provider_model_id="m",
                                  base_url=scripted_openai.base_url)],
        )  # fmt: skip
    finally:
        await db.close()
    scripted_openai.push(
        tool_call_reply(ScriptedToolCall("coding_agent_apply_patch", {"patch": PATCH})),
        tool_call_reply(ScriptedToolCall("coding_agent_apply_patch", {"patch": STYLE})),
        text_reply("The heading now says Approved Chat, in a darker colour."),
    )

    first = free_port()
    async with serve({**env, "RUNWRIGHT_NODE_ID": "node-a"}, first) as proc:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{first}", headers=owner.headers
        ) as http:
            app = (await http.post("/admin/apps", json={"name": "a", "slug": "approve"})).json()
            runs = f"/admin/apps/{app['id']}/coding-agent/runs"
            run = (
                await http.post(runs, json={"input": "Rename", "approval_policy": "patches"})
            ).json()
            url = f"{runs}/{run['run_id']}"
            first_pause = await _events(http, url)
            decision = {"request_id": first_pause[-2]["data"]["payload"]["request_id"],
                        "decision": "approve"}  # fmt: skip
            resumed = await http.post(f"{url}/resume", json={"approval": decision})
            assert resumed.status_code == 200, resumed.text
            # The first patch ran here; the model's second patch waits.
            paused = await _events(http, url, after=first_pause[-1]["id"])
    # The stream ended at the pause; the process dies with no shutdown hooks.
    assert [e["data"]["event"] for e in paused][-2:] == ["approval.requested", "run.completed"]
    assert proc.returncode is not None
    request = paused[-2]["data"]["payload"]
    assert request["arguments"] == {"patch": STYLE}
    assert len(scripted_openai.bodies) == 2

    second = free_port()
    env_b = {**env, "RUNWRIGHT_NODE_ID": "node-b", "RUNWRIGHT_DATA_DIR": str(tmp_path / "data-b")}
    async with serve(env_b, second):
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{second}", headers=owner.headers
        ) as http:
            assert (await http.get(url)).json()["status"] == "paused"
            resumed = await http.post(
                f"{url}/resume",
                json={"approval": {"request_id": request["request_id"], "decision": "approve"}},
            )
            assert resumed.status_code == 200, resumed.text
            after = await _events(http, url, after=paused[-1]["id"])
            final = (await http.get(url)).json()
            state = (await http.get(f"/admin/apps/{app['id']}/builder/state")).json()

    kinds = [e["data"]["event"] for e in after]
    assert kinds[-3:] == ["revision.created", "checkpoint.created", "run.completed"], kinds
    assert final["status"] == "completed"
    files = state["current_draft_revision"]["files"]
    # Both changes: the one made on node A before the pause, and the one approved on B.
    assert "<h1>Approved Chat</h1>" in files["src/App.tsx"]
    assert "color: #102030;" in files["src/styles.css"]
    # Two model calls before the pause, one after: no turn was asked again.
    assert len(scripted_openai.bodies) == 3
    assert scripted_openai.bodies[2]["messages"][-1]["role"] == "tool"
