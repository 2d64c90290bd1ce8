-- Coding-agent sessions (migration 0012). Every HTTP-facing lookup is scoped by app and
-- tenant.

-- A new session on an app of the tenant; no row when the app is not the tenant's.
-- name: sessions_insert
INSERT INTO coding_agent_sessions (
    id, tenant_id, published_app_id, created_by, title, multitask_strategy
)
SELECT $1, a.tenant_id, a.id, $4, $5, $6
FROM published_apps a
WHERE a.id = $3 AND a.tenant_id = $2
RETURNING *;

-- name: sessions_get
SELECT * FROM coding_agent_sessions
WHERE id = $1 AND published_app_id = $2 AND tenant_id = $3;

-- name: sessions_list
SELECT * FROM coding_agent_sessions
WHERE published_app_id = $1 AND tenant_id = $2
ORDER BY created_at DESC, id DESC
LIMIT $3;

-- The session row, locked until the creating transaction ends: creates on one session
-- decide one after the other (a second create sees the first one's run).
-- name: sessions_lock
SELECT * FROM coding_agent_sessions
WHERE id = $1 AND published_app_id = $2 AND tenant_id = $3
FOR UPDATE;

-- The session's runs that are not over (queued, running or paused), in session order.
-- name: sessions_active_runs
SELECT id, status, session_seq FROM agent_runs
WHERE session_id = $1 AND status IN ('queued', 'running', 'paused')
ORDER BY session_seq;

-- The next run's place in the session (under the lock of sessions_lock).
-- name: sessions_take_seq
UPDATE coding_agent_sessions SET run_count = run_count + 1, updated_at = now()
WHERE id = $1
RETURNING run_count;

-- name: sessions_runs
SELECT * FROM agent_runs WHERE session_id = $1 ORDER BY session_seq;

-- What the session's earlier runs contributed to its conversation, in session order.
-- name: sessions_earlier_turns
SELECT session_turns FROM agent_runs
WHERE session_id = $1 AND session_seq < $2 AND session_turns IS NOT NULL
ORDER BY session_seq;

-- The session's first queued run (the one to start when the run before it ends).
-- name: sessions_next_queued
SELECT id, tenant_id, published_app_id, user_id, execution_engine FROM agent_runs
WHERE session_id = $1 AND status = 'queued'
ORDER BY session_seq
LIMIT 1;
