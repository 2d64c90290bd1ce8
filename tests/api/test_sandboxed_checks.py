"""The npm checks really run (issue 9 item 1): a native run on a chat-classic app gets its
dependencies from the shared cache, the build check passes on the unchanged app, and after
a patch that adds a type error it fails with the compiler's diagnostics."""

from __future__ import annotations

import json

import pytest

from tests.support.openai_script import call
from tests.support.runs import create_run, read_stream, types
from tests.support.sandbox import needs_bwrap
from tests.support.scripted_openai import text_reply

pytestmark = needs_bwrap

TYPE_ERROR = (
    "*** Begin Patch\n"
    "*** Add File: src/broken.ts\n"
    "+export const answer: number = 'forty-two';\n"
    "*** End Patch\n"
)


@pytest.fixture
def settings(make_settings):
    return make_settings(build_timeout_seconds=180.0, test_timeout_seconds=180.0)


async def test_build_passes_then_fails_with_the_compilers_diagnostics(
    client,
    owner,
    native_app,
    scripted_openai,
):
    app, _ = native_app
    scripted_openai.push(
        call("coding_agent_build_worker_precheck"),
        call("coding_agent_run_targeted_tests", command="npm run typecheck"),
        call("coding_agent_apply_patch", patch=TYPE_ERROR),
        call("coding_agent_build_worker_precheck"),
        text_reply("The build is broken now."),
    )
    run = await create_run(client, app["id"], owner.headers, input="check the build")
    # three npm commands on a machine shared with other tests: a generous budget
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers, within=600)
    assert types(events)[-1] == "run.completed"

    results = [json.loads(body["messages"][-1]["content"]) for body in scripted_openai.bodies[1:]]
    clean_build, typecheck, patched, broken_build = results
    assert clean_build["status"] == "succeeded", clean_build
    assert "vite v5" in clean_build["result"]["stdout"]
    assert typecheck["status"] == "passed", typecheck
    assert "error" not in patched, patched
    assert broken_build["status"] == "failed" and broken_build["result"]["code"] != 0
    assert (
        "src/broken.ts(1,14): error TS2322: Type 'string' is not assignable to type 'number'."
        in broken_build["result"]["stdout"]
    ), broken_build
