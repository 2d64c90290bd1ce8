"""Workspaces of runs, auto-apply and checkpoints (contract sections 1.8-1.9, 7.3 and 8).

One object serves the three callers of the same rules: the run actor (prepare a run's
workspace, turn the finished workspace into a revision), the agent's checkpoint tools
(:class:`runtime.tools.CheckpointHost`) and the restore route.

Where we do better than the reference (docs/design.md 8.11, contract section 11): auto-apply
creates no revision when the workspace did not change, and it never overwrites someone
else's work: if the app's draft moved while the run worked (another run of the same app,
executing in parallel in its own workspace, applied first), the run's changes are merged
three-way onto the current draft (:mod:`runtime.merge`), and only a real overlap fails the
run with ``REVISION_CONFLICT`` listing the conflicting files.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.merge import merge_files
from runtime.project import validate_project
from runtime.run_workspaces import RevisionNotCached, RunWorkspaces
from runtime.runs.deps import AppliedRevision
from runtime.runs.errors import RunNotEnded, RunNotFound
from runtime.runs.events import iso
from runtime.runs.states import is_terminal
from runtime.settings import Settings
from runtime.tools import ToolContext, ToolError, ToolPermissionError
from runtime.workspace import Workspace
from storage import apps as apps_store
from storage.apps import Revision, RevisionConflict
from storage.database import Database
from storage.runs import RunStore, RunTakenOver


class CheckpointNotFound(LookupError):
    """The checkpoint id is not a revision of this app (HTTP 404 "Revision not found")."""


class AutoApplyConflict(Exception):
    """The run's changes and the app's current draft overlap (or the draft kept moving).

    Args:
        paths: the conflicting files (sorted; empty when the draft kept moving).
        draft_id: the current draft the run's changes were merged onto.
    """

    def __init__(self, paths: tuple[str, ...], draft_id: uuid.UUID | None) -> None:
        if paths:
            message = (
                "The app's draft changed while the run was working and both changed "
                f"{', '.join(paths)} in overlapping ways (current draft {draft_id}); "
                "the run's changes were not applied"
            )
        else:
            message = (
                "The app's draft kept changing while the run's changes were applied "
                f"(current draft {draft_id}); the run's changes were not applied"
            )
        super().__init__(message)
        self.paths = paths

    @property
    def detail(self) -> dict[str, Any]:
        """The ``run.failed`` diagnostic: ``{code: REVISION_CONFLICT, message, paths}``."""
        return {"code": "REVISION_CONFLICT", "message": str(self), "paths": list(self.paths)}


MERGE_ATTEMPTS = 5  # merges onto a draft that keeps moving before the run gives up
REVISION_CONFLICT = "REVISION_CONFLICT"  # a tool error's code: overlapping changes
RUN_TAKEN_OVER = "RUN_TAKEN_OVER"  # a tool error's code: fenced, another node has the run
DEFAULT_ENTRY = apps_store.DEFAULT_ENTRY_FILE


class WorkspaceMissing(Exception):
    """A completed run's workspace is gone (it finished on another machine after a crash)."""


def workspace_origin(row: Mapping[str, Any]) -> uuid.UUID | None:
    """The revision a run's workspace is (re)made from, and the base of the three-way merge
    of its next checkpoint or auto-apply: its last recorded checkpoint (a checkpoint the
    agent made or restored left its workspace holding that revision's files), else its
    base revision. ``row`` is the run's ``agent_runs`` row.

    One rule for both, so they agree for an attempt whose workspace is made again (a
    takeover under the ``requeue`` restart policy, a SIGTERM hand-back, an actor restart or
    a resume on a node without the workspace). Before, such an attempt's workspace was made
    from the base revision while its next checkpoint merged against its last checkpoint:
    the merge saw the checkpointed changes as undone by the run and reverted them on the
    draft.
    """
    return row["checkpoint_revision_id"] or row["base_revision_id"]


class Checkpoints:
    """Args:
    db: returns the started :class:`Database` (components start after construction).
    settings: data directory and revision limits.
    """

    def __init__(self, db: Callable[[], Database], settings: Settings) -> None:
        self._db = db
        self.settings = settings
        self.workspaces = RunWorkspaces(
            settings.runs_dir, cache_revisions=settings.workspace_cache_revisions
        )

    @property
    def db(self) -> Database:
        return self._db()

    # ---- workspaces ------------------------------------------------------------------

    def workspace_path(self, run_id: uuid.UUID) -> Path:
        """Where ``run_id``'s workspace will be (its parent created): what engine preflight
        checks and reports (contract 6: a locally resolvable workspace path)."""
        self.workspaces.runs.mkdir(parents=True, exist_ok=True)
        return self.workspaces.path(run_id)

    async def prepare(self, row: dict[str, Any], *, fresh: bool) -> Path:
        """The run's own workspace. A ``fresh`` start (a claim of a queued run: its first,
        or again after a requeue or hand-back) (re)makes it from :func:`workspace_origin`
        (its last checkpoint, else its base revision); a restarted or resumed run keeps
        what it already changed, unless its workspace is not on this machine (then it is
        made from :func:`workspace_origin` too)."""
        run_id, revision_id = row["id"], workspace_origin(row)
        workspaces = self.workspaces

        def make(files: dict[str, str] | None) -> Path:  # one worker-thread trip
            if not fresh and workspaces.exists(run_id):
                return workspaces.path(run_id)
            return workspaces.create(run_id, revision_id, files)

        try:
            return await asyncio.to_thread(make, None)  # the revision is cached: no query
        except RevisionNotCached:
            return await asyncio.to_thread(make, await self._revision_files(row))

    async def _revision_files(self, row: dict[str, Any]) -> dict[str, str]:
        revision_id = workspace_origin(row)
        if revision_id is None:
            return {}
        origin = await apps_store.get_revision(
            self.db, revision_id=revision_id, app_id=row["published_app_id"]
        )
        return dict(origin.files) if origin is not None else {}

    async def release(self, run_id: uuid.UUID) -> None:
        """Remove a finished run's workspace (its revision and checkpoint are made)."""
        await asyncio.to_thread(self.workspaces.remove, run_id)

    async def sweep(self) -> list[uuid.UUID]:
        """Start-up cleanup: remove the workspaces of runs that are no longer live
        (terminal or deleted; queued, running and paused runs keep theirs, whichever node
        owns them). Returns the runs whose workspace was removed."""
        listed = await asyncio.to_thread(self.workspaces.listed_runs)
        live = await RunStore(self.db).live_among(listed) if listed else set()
        return await asyncio.to_thread(self.workspaces.sweep, live)

    # ---- auto-apply ------------------------------------------------------------------

    async def auto_apply(self, row: dict[str, Any], *, token: int) -> AppliedRevision | None:
        """Turn a completed run's workspace into a new draft revision + checkpoint.

        When the app's draft is still the revision the workspace was made from
        (:func:`workspace_origin`), the workspace's files become the new draft. When the
        draft moved meanwhile, the run's changes are merged onto the current draft
        (:func:`runtime.merge.merge_files`: base = that revision, ours = the current
        draft, theirs = the workspace) and the merged files become the new draft,
        revision and checkpoint; a draft that moves again during
        the write is merged onto again (up to :data:`MERGE_ATTEMPTS` times). The revision
        and the run's link to it commit together under the owner's claim ``token``.

        Returns:
            The revision, or None when nothing changed (or the draft already holds every
            change the run made).

        Raises:
            ProjectValidationError: the (merged) files cannot form a valid project.
            AutoApplyConflict: both the run and the draft changed a file in overlapping
                ways (``paths`` lists them), or the draft kept moving.
            WorkspaceMissing: the run's workspace is not on this machine.
            storage.runs.RunTakenOver: another node took the run (nothing was written).
        """
        runs = RunStore(self.db)
        fresh = await runs.get(row["id"])
        if fresh is None:
            return None
        app_id = fresh["published_app_id"]
        if fresh["result_revision_id"] is not None:  # the agent made a checkpoint itself
            revision = await apps_store.get_revision(
                self.db, revision_id=fresh["result_revision_id"], app_id=app_id
            )
            if revision is not None:
                checkpoint = fresh["checkpoint_revision_id"] or revision.id
                return AppliedRevision(revision.id, checkpoint, revision.entry_file,
                                       len(revision.files))  # fmt: skip
        origin = workspace_origin(fresh)  # what the workspace was made from
        base = (
            None
            if origin is None
            else await apps_store.get_revision(self.db, revision_id=origin, app_id=app_id)
        )
        root = self.workspaces.path(fresh["id"])
        if not await asyncio.to_thread(root.is_dir):
            raise WorkspaceMissing(
                "The run's workspace is not on this machine any more; its changes are lost"
            )
        files = await asyncio.to_thread(Workspace(root).snapshot)
        base_files = dict(base.files) if base is not None else {}
        if base is not None and files == base_files:
            return None

        async def link(tx: Database, revision: Revision) -> None:
            # Committed with the revision: an auto-apply retried after a database error
            # finds the link and reuses the revision (above) instead of merging again
            # onto the draft it made itself; refused (fenced), the revision rolls back.
            await RunStore(tx).apply_revisions(fresh["id"], revision.id, revision.id,
                                               token=token)  # fmt: skip

        change = _Change(
            app_id=app_id, tenant_id=fresh["tenant_id"], created_by=fresh["user_id"],
            base_id=origin, base_files=base_files, files=files,
            entry_file=base.entry_file if base is not None else None,
        )  # fmt: skip
        revision, _ = await self._write_onto_draft(change, link, keep_unchanged=False)
        if revision is None:
            return None  # the draft already holds everything the run changed
        return AppliedRevision(revision.id, revision.id, revision.entry_file,
                               len(revision.files))  # fmt: skip

    async def _write_onto_draft(
        self,
        change: _Change,
        link: Callable[[Database, Revision], Awaitable[None]],
        *,
        keep_unchanged: bool,
        entry_file: str | None = None,
    ) -> tuple[Revision | None, Revision | None]:
        """Write ``change`` as a new draft revision, merged three-way onto the current
        draft when the draft is no longer ``change.base_id`` (one place for the rule of
        auto-apply and of the ``create_checkpoint`` tool). ``link(tx, revision)`` runs in
        the transaction that creates the revision (an exception from it rolls the revision
        back). ``entry_file`` wins over the draft's entry file.

        Returns:
            ``(revision, merged_onto)``: the new revision (None when the merge equals the
            current draft and not ``keep_unchanged``) and the draft it was merged onto
            (None: the draft had not moved).

        Raises:
            AutoApplyConflict: overlapping changes (``paths``), or the draft kept moving.
            ProjectValidationError: the (merged) files cannot form a valid project.
        """
        draft = await apps_store.current_draft(
            self.db, app_id=change.app_id, tenant_id=change.tenant_id
        )
        for _ in range(MERGE_ATTEMPTS):
            onto: Revision | None = None
            if draft is None or change.base_id is None or draft.id == change.base_id:
                merged = change.files
            else:
                result = merge_files(change.base_files, draft.files, change.files)
                if result.conflicts:
                    raise AutoApplyConflict(result.conflicts, draft.id)
                merged, onto = result.files, draft
                if merged == draft.files and not keep_unchanged:
                    return None, onto
            entry = entry_file or (draft.entry_file if draft is not None else None)
            entry = entry or change.entry_file or DEFAULT_ENTRY
            merged = validate_project(merged, entry, self.settings)
            try:
                async with self.db.transaction() as tx:
                    revision = await apps_store.create_draft_revision(
                        tx, app_id=change.app_id, tenant_id=change.tenant_id, files=merged,
                        entry_file=entry, base_revision_id=draft.id if draft else None,
                        created_by=change.created_by,
                    )  # fmt: skip
                    await link(tx, revision)
            except RevisionConflict as exc:  # the draft moved again: merge onto the new one
                draft = exc.latest
                continue
            return revision, onto
        raise AutoApplyConflict((), draft.id if draft else None)

    # ---- checkpoints -------------------------------------------------------------------

    async def restore(
        self,
        *,
        app_id: uuid.UUID,
        tenant_id: uuid.UUID,
        user_id: uuid.UUID | None,
        checkpoint_id: uuid.UUID,
        run_id: uuid.UUID | None = None,
        sync_workspace: Workspace | None = None,
        fence: tuple[uuid.UUID, int] | None = None,
    ) -> Revision:
        """Copy a revision's files into a new draft revision on top of the current draft,
        and relink ``run_id`` (contract 1.9, 8).

        ``sync_workspace`` (a run's workspace) is rewritten with the restored files: the
        agent's ``restore_checkpoint`` tool needs it to keep working on them. The HTTP route
        passes none: every run works in its own workspace, so there is no shared workspace
        to re-sync. ``fence`` (the tool's: its run and that run's claim token) fences the
        new revision.

        ``run_id`` (a person's restore) must name a run that has ended: a live run's
        checkpoint is what its workspace was made from or last synced with, the base of its
        next merge (:func:`workspace_origin`); moving it without its workspace would make
        that merge revert the run's work or drop the restore. A terminal status is final,
        so the check holds until the relink, which commits with the revision.

        Raises:
            CheckpointNotFound: ``checkpoint_id`` is not a revision of the app.
            runtime.runs.errors.RunNotFound: ``run_id`` names no run (deleted meanwhile).
            runtime.runs.errors.RunNotEnded: ``run_id`` is queued, running or paused
                (nothing written).
            ProjectValidationError: the checkpoint's files fail validation.
            storage.runs.RunTakenOver: fenced: another node took the run (nothing written).
        """
        if run_id is not None:
            run = await RunStore(self.db).get(run_id)
            if run is None:
                raise RunNotFound(str(run_id))
            if not is_terminal(run["status"]):
                raise RunNotEnded(run_id, run["status"])
        source = await apps_store.get_revision(self.db, revision_id=checkpoint_id, app_id=app_id)
        if source is None:
            raise CheckpointNotFound(str(checkpoint_id))
        files = validate_project(dict(source.files), source.entry_file, self.settings)
        async with self.db.transaction() as tx:
            if fence is not None:
                await RunStore(tx).hold_claim(*fence)
            revision = await apps_store.create_draft_revision(
                tx, app_id=app_id, tenant_id=tenant_id, files=files,
                entry_file=source.entry_file, created_by=user_id,
            )  # fmt: skip
            if run_id is not None:  # a person's restore relinks the ended run it names
                await RunStore(tx).set_revisions(run_id, revision.id, checkpoint_id)
        if sync_workspace is not None:
            await asyncio.to_thread(sync_workspace.materialise, revision.files)
        return revision

    async def create_checkpoint(self, ctx: ToolContext, entry_file: str | None) -> dict[str, Any]:
        """The ``create_checkpoint`` tool: the workspace becomes a new draft revision, the
        run's checkpoint (contract 7.3). The run's row is written by its actor, from the
        engine's :class:`runtime.engine.RevisionsRecorded` event.

        It never overwrites someone else's work: when the draft moved since the workspace
        was made or last synced (``ctx.origin``: another run applied, a person saved), the
        workspace's changes are merged three-way onto the current draft with auto-apply's
        rules (:meth:`_write_onto_draft`), the merged files become the checkpoint and the
        workspace is brought up to them (the answer then names ``merged_onto_revision_id``).
        The revision is written under the run's claim token (fencing).

        Raises:
            ToolError: ``REVISION_CONFLICT`` (with ``paths``) when both changed a file in
                overlapping ways, nothing written; ``RUN_TAKEN_OVER`` when another node
                took the run.
            ProjectValidationError: the files cannot form a valid project.
        """
        files = await asyncio.to_thread(ctx.workspace.snapshot)
        origin = ctx.origin.revision_id
        base = None
        if origin is not None:
            base = await apps_store.get_revision(self.db, revision_id=origin, app_id=ctx.app_id)
        change = _Change(
            app_id=ctx.app_id, tenant_id=ctx.tenant_id, created_by=ctx.user_id,
            base_id=origin if base is not None else None,
            base_files=dict(base.files) if base is not None else {}, files=files,
            entry_file=None,
        )  # fmt: skip

        async def fence(tx: Database, revision: Revision) -> None:
            if ctx.claim_token is not None:
                await RunStore(tx).hold_claim(ctx.run_id, ctx.claim_token)

        try:
            revision, onto = await self._write_onto_draft(
                change, fence, keep_unchanged=True, entry_file=entry_file
            )
        except AutoApplyConflict as exc:
            raise ToolError(_checkpoint_conflict(exc), code=REVISION_CONFLICT,
                            extra={"paths": list(exc.paths)}) from None  # fmt: skip
        except RunTakenOver:
            raise ToolError("Another node took this run over; no checkpoint was made",
                            code=RUN_TAKEN_OVER) from None  # fmt: skip
        assert revision is not None
        ctx.record_revisions(revision.id, None)
        if onto is not None:  # the workspace gets the others' changes it was merged with
            await asyncio.to_thread(_sync_workspace, ctx.workspace, files, revision.files)
        ctx.origin.revision_id = revision.id
        answer = {
            "checkpoint_revision_id": str(revision.id),
            "created_at": iso(revision.created_at),
            "file_count": len(revision.files),
            "entry_file": revision.entry_file,
        }
        if onto is not None:
            answer["merged_onto_revision_id"] = str(onto.id)
        return answer

    async def restore_checkpoint(self, ctx: ToolContext, revision_id: str) -> dict[str, Any]:
        """The ``restore_checkpoint`` tool (contract 7.3): another app's checkpoint is a
        permission error."""
        try:
            checkpoint_id = uuid.UUID(str(revision_id))
        except ValueError:
            raise ToolError(f"Invalid checkpoint id: {revision_id}") from None
        try:
            revision = await self.restore(
                app_id=ctx.app_id, tenant_id=ctx.tenant_id, user_id=ctx.user_id,
                checkpoint_id=checkpoint_id, sync_workspace=ctx.workspace,
                fence=None if ctx.claim_token is None else (ctx.run_id, ctx.claim_token),
            )  # fmt: skip
        except CheckpointNotFound:
            raise ToolPermissionError("Checkpoint does not belong to this app") from None
        except RunTakenOver:
            raise ToolError("Another node took this run over; nothing was restored",
                            code=RUN_TAKEN_OVER) from None  # fmt: skip
        ctx.record_revisions(checkpoint_id, revision.id)
        ctx.origin.revision_id = revision.id  # the workspace now holds its files
        return {
            "restored_revision_id": str(revision.id),
            "from_checkpoint_revision_id": str(checkpoint_id),
            "entry_file": revision.entry_file,
            "file_count": len(revision.files),
        }


@dataclass(frozen=True, slots=True)
class _Change:
    """A run's files to write onto the app's draft: ``files`` (the workspace) made from
    ``base_id`` (``base_files``; None: unknown, written as they are)."""

    app_id: uuid.UUID
    tenant_id: uuid.UUID
    created_by: uuid.UUID | None
    base_id: uuid.UUID | None
    base_files: dict[str, str]
    files: dict[str, str]
    entry_file: str | None


def _checkpoint_conflict(exc: AutoApplyConflict) -> str:
    """The ``create_checkpoint`` tool's REVISION_CONFLICT message."""
    if not exc.paths:
        return "The app's draft kept changing while the checkpoint was written; none was made"
    return (
        "The app's draft changed since this run's workspace was made (another run applied, "
        f"or a person saved) and both changed {', '.join(exc.paths)} in overlapping ways; "
        "no checkpoint was made"
    )


def _sync_workspace(workspace: Workspace, before: dict[str, str], after: dict[str, str]) -> None:
    """Bring the workspace from its snapshot ``before`` to the merged files ``after``:
    only the files that differ are written or removed (binary files, never in a snapshot,
    stay)."""
    for path, text in after.items():
        if before.get(path) != text:
            workspace.write_text(path, text)
    for path in before.keys() - after.keys():
        workspace.delete(path)
