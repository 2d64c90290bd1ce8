"""Worker environments of ``runwright serve --workers N`` (web/workers.py)."""

from __future__ import annotations

from web.workers import worker_env


def test_an_operator_node_id_gets_the_worker_index() -> None:
    base = {"RUNWRIGHT_NODE_ID": "api-1", "PATH": "/bin"}
    assert worker_env(base, 0, dsn=None)["RUNWRIGHT_NODE_ID"] == "api-1/0"
    assert worker_env(base, 3, dsn=None)["RUNWRIGHT_NODE_ID"] == "api-1/3"
    assert base["RUNWRIGHT_NODE_ID"] == "api-1"  # the parent's own is untouched


def test_without_a_node_id_each_worker_keeps_its_host_pid_default() -> None:
    assert "RUNWRIGHT_NODE_ID" not in worker_env({"PATH": "/bin"}, 1, dsn=None)


def test_only_worker_zero_may_start_the_local_model_and_all_share_the_dsn() -> None:
    first = worker_env({}, 0, dsn="postgresql://x/db")
    other = worker_env({}, 1, dsn="postgresql://x/db")
    assert "RUNWRIGHT_LOCAL_MODEL_AUTOSTART" not in first
    assert other["RUNWRIGHT_LOCAL_MODEL_AUTOSTART"] == "0"
    assert first["DATABASE_URL"] == other["DATABASE_URL"] == "postgresql://x/db"
