"""Run workspaces on disk (runtime/run_workspaces.py): one private copy per run from a
per-revision cache, never sharing an inode with the cache, bounded, swept at start-up."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from runtime.paths import PathPolicyError
from runtime.run_workspaces import RevisionNotCached, RunWorkspaces

FILES = {"index.html": "<h1>hi</h1>\n", "src/App.tsx": "export const a = 1\n"}


def tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_a_run_workspace_is_a_copy_of_its_base_revision(tmp_path: Path) -> None:
    spaces = RunWorkspaces(tmp_path, cache_revisions=4)
    run, revision = uuid.uuid4(), uuid.uuid4()
    root = spaces.create(run, revision, FILES)
    assert root == tmp_path / "run" / str(run) and spaces.exists(run)
    assert tree(root) == FILES
    assert spaces.cached(revision)
    # a second run on the same revision needs no files: it copies from the cache
    other = spaces.create(uuid.uuid4(), revision)
    assert tree(other) == FILES
    assert spaces.create(uuid.uuid4(), None).is_dir()  # no base revision: empty
    with pytest.raises(RevisionNotCached):
        spaces.create(uuid.uuid4(), uuid.uuid4())


def test_no_run_file_shares_an_inode_with_the_cache(tmp_path: Path) -> None:
    """A write in place (open without O_TRUNC-and-rename, as a sandboxed ``>>`` or an
    editor does) changes only the run's copy: the cache and later runs are untouched."""
    spaces = RunWorkspaces(tmp_path, cache_revisions=4)
    revision = uuid.uuid4()
    root = spaces.create(uuid.uuid4(), revision, FILES)
    cached = tmp_path / "revisions" / str(revision) / "index.html"
    mine = root / "index.html"
    assert os.stat(mine).st_ino != os.stat(cached).st_ino
    assert os.stat(mine).st_nlink == 1 and os.stat(cached).st_nlink == 1
    with open(mine, "r+b") as handle:  # in place: same inode
        handle.seek(0)
        handle.write(b"<h1>PWNED</h1>\n")
    os.chmod(mine, 0o777)
    assert cached.read_text() == FILES["index.html"]
    assert tree(spaces.create(uuid.uuid4(), revision)) == FILES


def test_remaking_replaces_the_old_contents(tmp_path: Path) -> None:
    spaces = RunWorkspaces(tmp_path, cache_revisions=4)
    run, revision = uuid.uuid4(), uuid.uuid4()
    root = spaces.create(run, revision, FILES)
    (root / "stray.txt").write_text("left over")
    assert tree(spaces.create(run, revision)) == FILES
    spaces.remove(run)
    assert not spaces.exists(run)
    spaces.remove(run)  # idempotent


def test_a_bad_path_in_a_revision_makes_nothing(tmp_path: Path) -> None:
    spaces = RunWorkspaces(tmp_path, cache_revisions=4)
    run, revision = uuid.uuid4(), uuid.uuid4()
    with pytest.raises(PathPolicyError):
        spaces.create(run, revision, {"../escape.txt": "x"})
    assert not spaces.exists(run) and not spaces.cached(revision)
    assert not (tmp_path / "escape.txt").exists()
    assert [p.name for p in (tmp_path / "revisions").iterdir()] == []  # no staging left


def test_the_cache_keeps_the_most_recently_used_revisions(tmp_path: Path) -> None:
    spaces = RunWorkspaces(tmp_path, cache_revisions=2)
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    spaces.create(uuid.uuid4(), first, FILES)
    spaces.create(uuid.uuid4(), second, FILES)
    old = (tmp_path / "revisions" / str(second)).stat().st_mtime - 60
    os.utime(tmp_path / "revisions" / str(second), (old, old))
    spaces.create(uuid.uuid4(), first)  # used again: most recent
    spaces.create(uuid.uuid4(), third, FILES)
    assert sorted(p.name for p in (tmp_path / "revisions").iterdir()) == sorted(
        [str(first), str(third)]
    )


def test_sweep_keeps_live_runs_and_removes_the_rest(tmp_path: Path) -> None:
    spaces = RunWorkspaces(tmp_path, cache_revisions=4)
    revision = uuid.uuid4()
    live, ended = uuid.uuid4(), uuid.uuid4()
    for run in (live, ended):
        spaces.create(run, revision, FILES)
        (tmp_path / "run" / f".{run}.seq").write_text("3")
    (tmp_path / "run" / ".new-leftover").mkdir()
    legacy = tmp_path / str(uuid.uuid4()) / str(uuid.uuid4())  # the old (app, user) layout
    legacy.mkdir(parents=True)
    assert spaces.sweep({live}) == [ended]
    assert spaces.listed_runs() == [live]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == sorted(
        [str(live), f".{live}.seq"]
    )
    assert not legacy.parent.exists()
    assert spaces.cached(revision)  # the cache is bounded on its own


def test_eviction_while_other_runs_copy_never_leaves_a_file_out(tmp_path: Path) -> None:
    """Runs copying a revision while other runs' revisions push it out of a one-entry
    cache (two threads, as two runs starting at once) get every file or fall back to the
    files they were given; none gets a workspace missing a directory, and no thread's
    half-written cache entry is taken from under it."""
    import threading

    deep = {
        **FILES,
        "src/components/Composer.tsx": "export const c = 1\n",
        "src/components/List.tsx": "export const l = 1\n",
        "src/lib/util/a.ts": "export const u = 1\n",
    }
    spaces = RunWorkspaces(tmp_path, cache_revisions=1)
    revision = uuid.uuid4()
    errors: list[BaseException] = []
    short: list[dict[str, str]] = []
    stop = threading.Event()

    def copier() -> None:
        try:
            for _ in range(300):
                run = uuid.uuid4()
                got = tree(spaces.create(run, revision, deep))
                if got != deep:
                    short.append(got)
                spaces.remove(run)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            stop.set()

    def evictor() -> None:
        try:
            while not stop.is_set():
                run = uuid.uuid4()
                spaces.create(run, uuid.uuid4(), deep)
                spaces.remove(run)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=copier), threading.Thread(target=evictor)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert not short
    assert len([p for p in (tmp_path / "revisions").iterdir() if not p.name.startswith(".")]) <= 2
