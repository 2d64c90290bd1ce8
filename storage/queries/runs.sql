-- Coding-agent runs (contract section 2). Status writes are conditional: a run only moves
-- from a status the transition table allows ($n::text[] of expected sources).

-- name: runs_insert
INSERT INTO agent_runs (
    id, tenant_id, published_app_id, user_id, initiator_user_id, surface, base_revision_id,
    requested_model_id, resolved_model_id, execution_engine, status, input_params,
    last_event_seq, created_at
) VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, 'queued', $10, 1, $11)
RETURNING *;

-- name: runs_get
SELECT * FROM agent_runs WHERE id = $1;

-- name: runs_get_for_app
SELECT * FROM agent_runs
WHERE id = $1 AND published_app_id = $2 AND tenant_id = $3 AND surface = $4;

-- name: runs_list_for_app
SELECT * FROM agent_runs
WHERE published_app_id = $1 AND tenant_id = $2 AND surface = $3
ORDER BY created_at DESC, id DESC
LIMIT $4;

-- name: runs_list_checkpoints
SELECT * FROM agent_runs
WHERE published_app_id = $1 AND tenant_id = $2 AND surface = $3
  AND checkpoint_revision_id IS NOT NULL
ORDER BY created_at DESC, id DESC
LIMIT $4;

-- name: runs_claim
UPDATE agent_runs
SET status = 'running', started_at = COALESCE(started_at, now()), error_message = NULL,
    completed_at = NULL, lease_owner = $2, lease_expires_at = now() + make_interval(secs => $3)
WHERE id = $1 AND status = 'queued'
RETURNING *;

-- name: runs_reclaim
UPDATE agent_runs
SET restart_count = restart_count + 1, lease_owner = $2,
    lease_expires_at = now() + make_interval(secs => $3)
WHERE id = $1 AND status = 'running'
RETURNING *;

-- name: runs_finish
UPDATE agent_runs
SET status = $2, error_message = $3, output_result = COALESCE($4, output_result),
    completed_at = now(), lease_owner = NULL, lease_expires_at = NULL
WHERE id = $1 AND status = ANY($5::text[])
RETURNING *;

-- name: runs_pause
UPDATE agent_runs
SET status = 'paused', checkpoint = $2, output_result = $3, lease_owner = NULL,
    lease_expires_at = NULL
WHERE id = $1 AND status = ANY($4::text[])
RETURNING *;

-- name: runs_requeue
UPDATE agent_runs
SET status = 'queued', resume_payload = COALESCE($2, resume_payload), completed_at = NULL,
    lease_owner = NULL, lease_expires_at = NULL
WHERE id = $1 AND status = ANY($3::text[])
RETURNING *;

-- name: runs_set_engine_ref
UPDATE agent_runs SET engine_run_ref = $2 WHERE id = $1;

-- name: runs_set_revisions
UPDATE agent_runs
SET result_revision_id = $2, checkpoint_revision_id = $3
WHERE id = $1
RETURNING *;

-- name: runs_heartbeat
UPDATE agent_runs
SET lease_expires_at = now() + make_interval(secs => $2)
WHERE lease_owner = $1 AND status = 'running';

-- name: runs_list_orphaned
-- Runs this node left running (it restarted), or whose lease lapsed on any node.
SELECT id FROM agent_runs
WHERE status = 'running'
  AND (lease_owner = $1 OR lease_owner IS NULL OR lease_expires_at < now())
ORDER BY created_at, id;

-- name: runs_list_queued
SELECT id FROM agent_runs WHERE status = 'queued' ORDER BY created_at, id;

-- name: runs_list_lapsed
-- Running runs whose lease lapsed (their node stopped heartbeating), on any node.
SELECT id FROM agent_runs
WHERE status = 'running' AND lease_expires_at < now()
ORDER BY created_at, id;
