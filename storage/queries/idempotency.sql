-- Idempotency keys of run creation (migration 0005).

-- A run created under an idempotency key: the key row, the run and its event 1 in one
-- statement. The key insert wins only when the key is free (no row, or an expired one,
-- which is taken over); otherwise no run is inserted and no row comes back. A concurrent
-- duplicate waits on the primary key until the first transaction ends, then sees its row.
-- $1-$16 as runs_insert; $17 principal, $18 key, $19 fingerprint, $20 ttl in seconds;
-- $21, $22 the session and place in it (runs_insert's $17, $18); $23 the inserting node's id
-- (runs_insert's $19); $24 the create response, stored with the key (one statement: no
-- reader ever sees the key without its response).
-- name: runs_insert_keyed
WITH key AS (
    INSERT INTO run_idempotency_keys (
        tenant_id, app_id, principal, idem_key, fingerprint, run_id, expires_at, response
    ) VALUES ($2, $3, $17, $18, $19, $1, now() + make_interval(secs => $20), $24::json)
    ON CONFLICT (tenant_id, app_id, principal, idem_key) DO UPDATE
        SET fingerprint = EXCLUDED.fingerprint, run_id = EXCLUDED.run_id,
            response = EXCLUDED.response, created_at = now(), expires_at = EXCLUDED.expires_at
        WHERE run_idempotency_keys.expires_at <= now()
    RETURNING run_id
), run AS (
    INSERT INTO agent_runs (
        id, tenant_id, published_app_id, user_id, initiator_user_id, surface, base_revision_id,
        requested_model_id, resolved_model_id, execution_engine, status, input_params,
        last_event_seq, created_at, session_id, session_seq
    )
    SELECT $1, $2, $3, $4, $4, $5, $6, $7, $8, $9, 'queued', $10, 1, $11, $21, $22
    WHERE EXISTS (SELECT 1 FROM key)
    RETURNING *
), accepted AS (
    INSERT INTO run_events (run_id, seq, type, stage, payload, diagnostics, ts)
    SELECT id, 1, $12::text, $13::text, $14::text::json, $15::text::json, $16::timestamptz
    FROM run
), wake AS (
    -- as runs_insert: rw_work '<run_id>:<origin>', delivered on commit
    SELECT count(pg_notify('rw_work', id::text || ':' || $23::text)) AS n FROM run
)
SELECT run.* FROM run, wake;

-- name: idempotency_set_response
UPDATE run_idempotency_keys SET response = $5
WHERE tenant_id = $1 AND app_id = $2 AND principal = $3 AND idem_key = $4;

-- The live (unexpired) entry of a key, or no row.
-- name: idempotency_get
SELECT fingerprint, run_id, response FROM run_idempotency_keys
WHERE tenant_id = $1 AND app_id = $2 AND principal = $3 AND idem_key = $4
  AND expires_at > now();

-- Expired keys, at most $1 per call (the sweeper repeats while a batch is full).
-- name: idempotency_sweep
DELETE FROM run_idempotency_keys
WHERE ctid IN (
    SELECT ctid FROM run_idempotency_keys WHERE expires_at <= now() LIMIT $1
);
