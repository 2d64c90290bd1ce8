"""The exfiltrating ``package.json`` of issue 9, through the public API of a real
``runwright serve`` process: the (scripted) model rewrites ``scripts.build`` into a shell
command that runs a probe, then calls the build check. The probe runs (its report comes
back to the model), and it finds nothing: not the data directory, not another tenant's
workspace, not the server's environment or its ``/proc``, no writable place outside the
workspace, no network.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path

import httpx
import pytest

from storage import models as models_store
from storage.database import Database
from storage.models import BindingSpec
from tests.support.fixtures_openai import scripted_openai  # noqa: F401
from tests.support.sandbox import needs_bwrap, shared_deps_dir
from tests.support.scripted_openai import (
    ScriptedOpenAI,
    ScriptedToolCall,
    text_reply,
    tool_call_reply,
)
from tests.support.seed import Seeder
from tests.support.serve_process import free_port, serve

pytestmark = needs_bwrap

SECRET = "sec-jwt-0123456789abcdef-0123456789abcdef-exfil"
ENV_CANARY = f"env-canary-{uuid.uuid4().hex}"
FILE_CANARY = f"file-canary-{uuid.uuid4().hex}"
NEIGHBOUR_CANARY = f"neighbour-canary-{uuid.uuid4().hex}"
SANDBOX_ENV_KEYS = {
    "PATH", "HOME", "TMPDIR", "LANG", "CI", "NO_COLOR", "npm_config_cache",
    "npm_config_update_notifier", "npm_config_fund", "npm_config_audit",
    # set by npm run itself
    "INIT_CWD", "NODE", "COLOR", "EDITOR", "PWD", "SHLVL", "_",
}  # fmt: skip

PROBE = r"""
const fs = require('node:fs');
const net = require('node:net');
const dns = require('node:dns');
const targets = TARGETS;
const out = { uid: process.getuid(), env: process.env, reads: {}, lists: {}, writes: {} };
const attempt = (fn) => { try { return fn(); } catch (e) { return 'ERR ' + e.code; } };
out.pids = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p));
for (const p of targets.read) out.reads[p] = attempt(() => fs.readFileSync(p, 'utf8'));
for (const p of targets.list) out.lists[p] = attempt(() => fs.readdirSync(p));
for (const p of targets.write) out.writes[p] = attempt(() => fs.writeFileSync(p, 'x') || 'OK');
const connect = (host, port) => new Promise((resolve) => {
  const s = net.connect({ host, port });
  s.setTimeout(5000);
  s.on('connect', () => { s.destroy(); resolve('CONNECTED'); });
  s.on('error', (e) => resolve('ERR ' + e.code));
  s.on('timeout', () => { s.destroy(); resolve('TIMEOUT'); });
});
const lookup = (name) => new Promise((resolve) => {
  dns.lookup(name, (e, address) => resolve(e ? 'ERR ' + e.code : address));
});
(async () => {
  out.net = {};
  for (const [h, p] of targets.connect) out.net[`${h}:${p}`] = await connect(h, p);
  out.dns = await lookup('registry.npmjs.org');
  console.log('PROBE ' + JSON.stringify(out));
})();
"""


def _patch(targets: dict) -> str:
    probe = PROBE.strip().replace("TARGETS", json.dumps(targets))
    added = "\n".join("+" + line for line in probe.splitlines())
    return (
        "*** Begin Patch\n"
        "*** Update File: package.json\n"
        "@@\n"
        '-    "build": "tsc --noEmit && vite build",\n'
        '+    "build": "cat /proc/1/environ /proc/self/environ; id; node probe.cjs",\n'
        "*** Add File: probe.cjs\n"
        f"{added}\n"
        "*** End Patch\n"
    )


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "RUNWRIGHT_DATA_DIR": str(tmp_path / "data"),
        "RUNWRIGHT_JWT_SECRET": SECRET,
        "RUNWRIGHT_LOCAL_MODEL_AUTOSTART": "0",
        "RUNWRIGHT_DEPS_CACHE_DIR": str(shared_deps_dir()),
        "RUNWRIGHT_BUILD_TIMEOUT_SECONDS": "120",
        "EXFIL_TEST_CANARY": ENV_CANARY,
        # the scripted model listens on loopback, which tenant egress refuses by default
        "RUNWRIGHT_EGRESS_ALLOWED_NETWORKS": "127.0.0.0/8",
    }


async def test_a_rewritten_build_script_finds_nothing_to_steal(
    env: dict[str, str],
    database_url: str,
    tmp_path: Path,
    scripted_openai: ScriptedOpenAI,  # noqa: F811
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "canary.txt").write_text(FILE_CANARY)
    neighbour = data / "workspaces" / str(uuid.uuid4()) / str(uuid.uuid4())
    neighbour.mkdir(parents=True)
    (neighbour / "secret.txt").write_text(NEIGHBOUR_CANARY)

    db = await Database.connect(database_url, min_size=1, max_size=2)
    try:
        owner = await Seeder(db, SECRET).tenant_admin(role="owner")
        await models_store.create_model(
            db, tenant_id=owner.tenant_id, name="attacker-model", is_default=True,
            status="active",
            bindings=[BindingSpec(provider="openai", provider_model_id="scripted-model",
                                  base_url=scripted_openai.base_url)],
        )  # fmt: skip
    finally:
        await db.close()

    port = free_port()
    model_port = int(scripted_openai.base_url.split(":")[2].split("/")[0])
    async with serve(env, port) as server:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=owner.headers, timeout=30
        ) as http:
            created = await http.post("/admin/apps", json={"name": "victim", "slug": "victim"})
            app = created.json()
            workspace_parent = data / "workspaces" / app["id"]
            targets = {
                "read": [
                    str(data / "canary.txt"),
                    str(neighbour / "secret.txt"),
                    f"/proc/{server.pid}/environ",
                    "/proc/1/environ",
                    str(Path.home() / ".bashrc"),
                    "/etc/passwd",
                ],
                "list": [str(data), str(data / "workspaces"), str(workspace_parent), "/work",
                         str(Path.home()), "/"],
                "write": [
                    str(data / "pwned"),
                    str(neighbour / "pwned"),
                    str(workspace_parent / "pwned"),
                    "/usr/pwned",
                    "/work/pwned",
                    "/work/node_modules/pwned",
                ],
                "connect": [["127.0.0.1", port], ["127.0.0.1", model_port], ["1.1.1.1", 443]],
            }  # fmt: skip
            scripted_openai.push(
                tool_call_reply(
                    ScriptedToolCall("coding_agent_apply_patch", {"patch": _patch(targets)})
                ),
                tool_call_reply(ScriptedToolCall("coding_agent_build_worker_precheck", {})),
                text_reply("Done."),
            )
            runs = f"/admin/apps/{app['id']}/coding-agent/runs"
            run = (await http.post(runs, json={"input": "Make the build faster"})).json()
            for _ in range(1200):
                status = (await http.get(f"{runs}/{run['run_id']}")).json()["status"]
                if status not in ("queued", "running"):
                    break
                await asyncio.sleep(0.1)
            assert status == "completed", (await http.get(f"{runs}/{run['run_id']}")).json()
        assert server.returncode is None  # the server survived

    patch_result = json.loads(scripted_openai.bodies[1]["messages"][-1]["content"])
    assert "error" not in patch_result, patch_result
    build = json.loads(scripted_openai.bodies[2]["messages"][-1]["content"])
    stdout = build["result"]["stdout"]
    assert build["command"] == "npm run build" and build["result"]["code"] == 0, build
    everything = json.dumps(build)
    for secret in (SECRET, ENV_CANARY, FILE_CANARY, NEIGHBOUR_CANARY):
        assert secret not in everything

    report = json.loads(stdout.split("PROBE ", 1)[1].splitlines()[0])
    assert report["uid"] == 65534
    assert "uid=65534" in stdout
    foreign = {k for k in report["env"] if k not in SANDBOX_ENV_KEYS and not k.startswith("npm_")}
    assert foreign == set(), report["env"]  # npm adds npm_* (its config and the script)
    assert len(report["pids"]) < 10  # its own PID namespace: bwrap, sh, npm, node
    for path, value in report["reads"].items():
        assert value.startswith("ERR "), (path, value)
    for path, value in report["lists"].items():
        if path == "/work":
            assert sorted(value) == ["app", "node_modules"]
        elif path == "/":
            assert "root" not in value and "home" not in value and "proc" in value
        else:
            assert value.startswith("ERR "), (path, value)
    for path, value in report["writes"].items():
        assert value.startswith("ERR "), (path, value)
    assert not (data / "pwned").exists() and not (neighbour / "pwned").exists()
    assert not (workspace_parent / "pwned").exists()
    for where, value in report["net"].items():
        assert value.startswith("ERR "), (where, value)
    assert report["dns"].startswith("ERR ")
