"""Exactly-once effects (issue 10, Part 2 item 2), with the fault injected into a real Postgres.

A native run (scripted OpenAI-compatible model on loopback: one patch, then the answer) is
held at one step of its finish by a trigger waiting on an advisory lock the test holds:
auto-apply (its INSERT of the new revision) or the final status write. While the step
waits, the test stops Postgres (``pg_ctl stop -m fast``, every connection dropped), waits
until the actor reports it will retry that step, and starts Postgres again. The run must
then complete with: the model called once per turn of one attempt (never again for work
already done), the engine's result recorded before the finish, one revision, one terminal
event, seqs 1..N without gaps, and the assistant's text exactly once.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import asyncpg
import pytest

from runtime.settings import Settings
from storage import models as models_store
from storage.models import BindingSpec
from tests.support.api import create_app_via_api, running_app
from tests.support.cluster import DATABASE, Cluster
from tests.support.fixtures_openai import scripted_openai  # noqa: F401
from tests.support.runs import create_run, parse_sse, runs_url
from tests.support.scripted_openai import (
    ScriptedOpenAI,
    ScriptedToolCall,
    text_reply,
    tool_call_reply,
)
from tests.support.seed import Seeder
from tests.support.serve_process import until

GATE_KEY = 4242
ANSWER = "I renamed the heading; nothing else changed."
PATCH = """\
--- a/src/App.tsx
+++ b/src/App.tsx
@@ -33,3 +33,3 @@
       <header className="chat__header">
-        <h1>Chat</h1>
+        <h1>Runwright Chat</h1>
       </header>
"""

# Fault injection only (test instrumentation, not application SQL): a trigger that waits on
# the advisory lock GATE_KEY, on the statement of the step under test.
GATE_FUNCTION = f"""
CREATE FUNCTION fault_gate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({GATE_KEY});
    RETURN NEW;
END $$;
"""
GATES = {
    # auto-apply: the INSERT of the revision the run's workspace becomes
    "AutoApply": "CREATE TRIGGER fault_gate BEFORE INSERT ON app_revisions "
    "FOR EACH ROW EXECUTE FUNCTION fault_gate()",
    # the final status write
    "WriteStatus": "CREATE TRIGGER fault_gate BEFORE UPDATE ON agent_runs FOR EACH ROW "
    "WHEN (NEW.status = 'completed' AND OLD.status <> 'completed') "
    "EXECUTE FUNCTION fault_gate()",
}


@pytest.mark.parametrize("step", ["AutoApply", "WriteStatus"])
async def test_a_database_restart_at_a_finish_step_retries_that_step_alone(
    step: str,
    cluster: Cluster,
    settings: Settings,
    scripted_openai: ScriptedOpenAI,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="runtime.runs.actor")
    dsn = cluster.dsn(DATABASE)
    async with running_app(settings) as (client, services):
        owner = await Seeder(services.db, services.jwt_secret).tenant_admin(role="owner")
        # an operator (global) model: tenant models may not point at loopback (egress)
        await models_store.create_model(
            services.db, tenant_id=None, name="scripted", is_default=True,
            status="active",
            bindings=[BindingSpec(provider="openai", provider_model_id="m",
                                  base_url=scripted_openai.base_url)],
        )  # fmt: skip
        app, _ = await create_app_via_api(client, owner.headers)
        app_id = uuid.UUID(app["id"])

        ctl = await asyncpg.connect(dsn)
        try:
            await ctl.execute(GATE_FUNCTION)
            await ctl.execute(GATES[step])
            await ctl.execute("SELECT pg_advisory_lock($1)", GATE_KEY)
            scripted_openai.push(
                tool_call_reply(ScriptedToolCall("coding_agent_apply_patch", {"patch": PATCH})),
                text_reply(ANSWER, chunk_size=7),
            )
            run = await create_run(client, app["id"], owner.headers, input="Rename the heading")
            run_id = uuid.UUID(run["run_id"])

            async def held() -> bool:
                waiting = await ctl.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                )
                return bool(waiting)

            await until(held, within=90, what=f"the run to reach {step}")
            # the engine's work was recorded before the finish began
            outcome = await ctl.fetchval(
                "SELECT engine_outcome FROM agent_runs WHERE id = $1", run_id
            )
            assert outcome is not None and '"completed"' in outcome
            # stop while the gate is still closed: the waiting step dies with its connection
            await cluster.stop("fast")
        finally:
            ctl.terminate()

        def retried() -> bool:
            return any(f"{step} failed" in r.getMessage() for r in caplog.records)

        await until(retried, within=60, what=f"the actor to retry {step}")
        await cluster.start()

        async def finished() -> dict[str, Any] | None:
            response = await client.get(runs_url(app["id"], f"/{run_id}"), headers=owner.headers)
            if response.status_code != 200:
                return None  # the pool is still reconnecting
            body = await response.get_json()
            return body if body["status"] not in ("queued", "running") else None

        final = await until(finished, within=90, what="the run to finish")
        assert final["status"] == "completed", final

        response = await client.get(runs_url(app["id"], f"/{run_id}/stream"),
                                    headers=owner.headers)  # fmt: skip
        events = [e["data"] for e in parse_sse(await response.get_data(as_text=True))]

    assert len(scripted_openai.requests) == 2  # the tool turn and the answer, once each
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    kinds = [e["event"] for e in events]
    assert [k for k in kinds if k in ("run.completed", "run.failed")] == ["run.completed"]
    assert kinds[-1] == "run.completed"
    assert kinds.count("revision.created") == 1 and kinds.count("checkpoint.created") == 1
    text = "".join(e["payload"]["content"] for e in events if e["event"] == "assistant.delta")
    assert text == ANSWER
    assert not any("could not start its engine" in r.getMessage() for r in caplog.records)

    conn = await asyncpg.connect(dsn)
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM app_revisions WHERE published_app_id = $1", app_id
        )
        restarts = await conn.fetchval("SELECT restart_count FROM agent_runs WHERE id = $1",
                                       run_id)  # fmt: skip
    finally:
        await conn.close()
    assert count == 2  # the app's first draft and the one the run made, nothing twice
    assert restarts == 0  # the actor never crashed: the step was retried in place
