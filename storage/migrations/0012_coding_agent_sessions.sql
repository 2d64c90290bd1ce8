-- Coding-agent sessions (issue 12 item 1, docs/design.md 10): an ordered conversation of
-- runs on one app. A run created with a session_id continues it: the model sees the turns
-- of the session's earlier runs and the run starts from the session's latest result.
--   multitask_strategy: what a create does while a run of the session is active (queued,
--     running or paused), unless the create names its own: reject | enqueue | interrupt |
--     rollback.
--   run_count: runs created in the session so far; the next run's session_seq is
--     run_count + 1. Creates lock the session row (FOR UPDATE) while they decide, so two
--     concurrent creates never both see an idle session.
CREATE TABLE coding_agent_sessions (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    published_app_id    uuid NOT NULL REFERENCES published_apps(id) ON DELETE CASCADE,
    created_by          uuid REFERENCES users(id) ON DELETE SET NULL,
    title               text,
    multitask_strategy  text NOT NULL DEFAULT 'reject'
                        CHECK (multitask_strategy IN ('reject', 'enqueue', 'interrupt',
                                                      'rollback')),
    run_count           integer NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX coding_agent_sessions_app_idx
    ON coding_agent_sessions (published_app_id, tenant_id, created_at DESC);

-- A run's place in its session (NULL for runs without one) and what it contributes to the
-- session's conversation:
--   session_turns: the run's turns as the model should see them next time (its user prompt,
--     then the engine's messages: assistant replies, tool calls and tool results), written
--     with its final status. NULL: the run contributes nothing (it never started, or it was
--     rolled back), and then neither does its result revision.
ALTER TABLE agent_runs
    ADD COLUMN session_id uuid REFERENCES coding_agent_sessions(id) ON DELETE CASCADE,
    ADD COLUMN session_seq integer,
    ADD COLUMN session_turns jsonb,
    ADD CONSTRAINT agent_runs_session_seq_check
        CHECK ((session_id IS NULL) = (session_seq IS NULL));
CREATE UNIQUE INDEX agent_runs_session_idx ON agent_runs (session_id, session_seq)
    WHERE session_id IS NOT NULL;

-- The one eligibility rule of session runs: a queued run of a session may start only when
-- no earlier run of its session is still queued, running or paused (runs of a session
-- execute one at a time, in session order). Runs without a session are always eligible.
-- Every claim of a queued run applies it (storage/queries/runs.sql: runs_claim).
CREATE FUNCTION coding_agent_session_ready(p_session uuid, p_seq integer) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT p_session IS NULL OR NOT EXISTS (
        SELECT 1 FROM agent_runs e
        WHERE e.session_id = p_session AND e.session_seq < p_seq
          AND e.status IN ('queued', 'running', 'paused')
    )
$$;

-- The revision a session run starts from, resolved when it is claimed: the result of the
-- session's latest contributing run that produced one, when that revision is newer than
-- the base the run was created with (the draft then); else that base. So a follow-up
-- enqueued while the previous run worked starts from what that run produced, not from the
-- stale draft of its creation, while a draft saved after the session's last result wins.
CREATE FUNCTION coding_agent_session_base(p_session uuid, p_seq integer, p_base uuid)
RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT COALESCE((
        SELECT e.result_revision_id
        FROM agent_runs e
        JOIN app_revisions res ON res.id = e.result_revision_id
        LEFT JOIN app_revisions b ON b.id = p_base
        WHERE p_session IS NOT NULL AND e.session_id = p_session AND e.session_seq < p_seq
          AND e.session_turns IS NOT NULL
          AND (b.id IS NULL OR res.created_at > b.created_at)
        ORDER BY e.session_seq DESC
        LIMIT 1
    ), p_base)
$$;
