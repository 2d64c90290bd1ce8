-- Coding-agent runs (contract section 2). Status writes are conditional: a run only moves
-- from a status the transition table allows. Every statement that sets `status` takes
-- those sources as a `status = ANY($n::text[])` parameter computed from
-- runtime/runs/states.py (tests/unit/test_lifecycle.py checks there is no other form).

-- A new queued run and its first event (run.accepted, seq 1) in one statement: atomic,
-- one round trip. $12.. are that event's type, stage, payload and diagnostics (JSON text)
-- and ts; the event's run_id is the run's id. $17, $18: the run's session and its place in
-- it (NULL, NULL for a run without a session). $19: the inserting node's id (rw_work's origin).
-- name: runs_insert
WITH run AS (
    INSERT INTO agent_runs (
        id, tenant_id, published_app_id, user_id, initiator_user_id, surface, base_revision_id,
        requested_model_id, resolved_model_id, execution_engine, status, input_params,
        last_event_seq, created_at, session_id, session_seq
    ) VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, 'queued', $10, 1, $11, $17, $18)
    RETURNING *
), accepted AS (
    INSERT INTO run_events (run_id, seq, type, stage, payload, diagnostics, ts)
    SELECT id, 1, $12::text, $13::text, $14::text::json, $15::text::json, $16::timestamptz
    FROM run
), wake AS (
    -- nodes with a free slot wake their claim loop (rw_work '<run_id>:<origin>', delivered
    -- on commit; the inserting node wakes its own directly)
    SELECT count(pg_notify('rw_work', id::text || ':' || $19::text)) AS n FROM run
)
SELECT run.* FROM run, wake;

-- What run creation reads (contract 1.2), in one round trip: the app's current draft
-- (draft_* columns, NULL when the app is not in that tenant or has no draft) and the chat
-- model the run will use (the models columns, NULL when none qualifies), by the one rule
-- in resolve_chat_model (migration 0002), and how many runs the tenant has queued.
-- draft_approval_policy is the app's default approval policy (migration 0013).
-- idem_*: the live Idempotency-Key entry of principal $4 and key $5 on this app (as
-- idempotency_get; NULL without a key or when it is free), so a repeat costs no extra read.
-- name: runs_create_inputs
WITH k AS (
    SELECT fingerprint, run_id, response FROM run_idempotency_keys
    WHERE tenant_id = $2 AND app_id = $1 AND principal = $4::text AND idem_key = $5::text
      AND expires_at > now()
), d AS (
    SELECT r.id, r.entry_file, r.created_at, a.approval_policy
    FROM published_apps a
    JOIN app_revisions r ON r.id = a.current_draft_revision_id AND r.published_app_id = a.id
    WHERE a.id = $1 AND a.tenant_id = $2
), m AS (
    SELECT * FROM resolve_chat_model($2, $3::uuid)
)
SELECT d.id AS draft_id, d.entry_file AS draft_entry_file, d.created_at AS draft_created_at,
    d.approval_policy AS draft_approval_policy,
    (SELECT count(*) FROM agent_runs q WHERE q.tenant_id = $2 AND q.status = 'queued')
        AS tenant_queued,
    k.fingerprint AS idem_fingerprint, k.run_id AS idem_run_id, k.response AS idem_response,
    m.*
FROM (SELECT) AS one
LEFT JOIN d ON true
LEFT JOIN m ON true
LEFT JOIN k ON true;

-- name: runs_get
SELECT * FROM agent_runs WHERE id = $1;

-- name: runs_get_for_app
SELECT * FROM agent_runs
WHERE id = $1 AND published_app_id = $2 AND tenant_id = $3 AND surface = $4;

-- name: runs_list_checkpoints
SELECT * FROM agent_runs
WHERE published_app_id = $1 AND tenant_id = $2 AND surface = $3
  AND checkpoint_revision_id IS NOT NULL
ORDER BY created_at DESC, id DESC
LIMIT $4;

-- A run of a session is claimed only when it is next in its session, and then starts
-- from the session's latest result (migration 0012: coding_agent_session_ready, _base).
-- name: runs_claim
UPDATE agent_runs
SET status = 'running', started_at = COALESCE(started_at, clock_timestamp()), error_message = NULL,
    completed_at = NULL, lease_owner = $2, lease_expires_at = now() + make_interval(secs => $3),
    base_revision_id = CASE WHEN session_id IS NULL THEN base_revision_id
        ELSE coding_agent_session_base(session_id, session_seq, base_revision_id) END,
    claim_token = claim_token + 1
WHERE id = $1 AND status = ANY($4::text[])
  AND coding_agent_session_ready(session_id, session_seq)
RETURNING *;

-- The run queue (docs/design.md 9): node $1 claims up to $3 of the oldest eligible queued runs
-- with a lease of $2 s, fair across tenants. The one claim query: a condition on which
-- queued run may start goes into `eligible` (a run filtered out keeps its place).
--   $4  per-tenant cap on executing runs, counted across all nodes
--   $5  the claim's sources (the transition table's: queued); $8 its target (running)
--   $6  the statuses that count as executing (running)
--   $7  runs this node is busy with (a command actor holds them): passed over
-- Runs of one app execute in parallel: each has its own workspace (runtime/run_workspaces.py).
-- Fairness: a tenant's k-th oldest eligible run gets turn (its executing runs + k); runs
-- are taken by turn, then age. So tenants take turns, and one with many executing runs
-- yields to one with few, across every node. Callers hold the claim lock
-- (queue_claim_lock) in the same transaction, so the counts see every earlier claim and
-- the caps hold; SKIP LOCKED passes over a run another statement is changing right now.
-- Every claim bumps claim_token (the fencing token).
-- started_at and completed_at are clock_timestamp(), the moment of the write, not now(),
-- the transaction's start: a claim transaction that began (and waited on the claim lock)
-- before the previous run of its session ended would otherwise record a start before
-- that end.
-- One row per claimed run (its columns and passed_over), or, when none was claimed, one row
-- of NULLs with passed_over: how many eligible runs this round passed over for their
-- tenant's cap or because another statement held them (a finished run's slot may be theirs).
-- name: runs_claim_next
WITH live AS (
    SELECT tenant_id, count(*) AS n FROM agent_runs
    WHERE status = ANY($6::text[])
    GROUP BY tenant_id
), eligible AS (
    SELECT q.id, q.tenant_id, q.created_at
    FROM agent_runs q
    WHERE q.status = ANY($5::text[]) AND q.id <> ALL($7::uuid[])
      -- a session's runs execute one at a time, in order (migration 0012)
      AND coding_agent_session_ready(q.session_id, q.session_seq)
), ranked AS (
    SELECT e.id, e.created_at,
        COALESCE(l.n, 0)
            + row_number() OVER (PARTITION BY e.tenant_id ORDER BY e.created_at, e.id) AS turn
    FROM eligible e
    LEFT JOIN live l ON l.tenant_id = e.tenant_id
), picked AS (
    SELECT r.id FROM ranked r
    WHERE r.turn <= $4
    ORDER BY r.turn, r.created_at, r.id
    LIMIT $3
), locked AS (
    SELECT a.id FROM agent_runs a
    WHERE a.id IN (SELECT id FROM picked) AND a.status = ANY($5::text[])
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE agent_runs a
    SET status = $8::text, started_at = COALESCE(a.started_at, clock_timestamp()),
        error_message = NULL, completed_at = NULL, lease_owner = $1,
        lease_expires_at = now() + make_interval(secs => $2),
        base_revision_id = CASE WHEN a.session_id IS NULL THEN a.base_revision_id
            ELSE coding_agent_session_base(a.session_id, a.session_seq, a.base_revision_id) END,
        claim_token = a.claim_token + 1
    FROM locked
    WHERE a.id = locked.id
    RETURNING a.*
), passed AS (
    SELECT (SELECT count(*) FROM ranked WHERE turn > $4)
        + (SELECT count(*) FROM picked) - (SELECT count(*) FROM locked) AS passed_over
)
SELECT c.*, p.passed_over FROM passed p LEFT JOIN claimed c ON true;

-- Serialises claims across nodes for the rest of the transaction (the caps above are
-- counted, so two claims must not count at once). Bounded: a node stalled inside its claim
-- (SIGSTOP) loses its session after 2 s idle, releasing the lock, and a claim waits at
-- most 2 s for the lock (then fails and is retried at the next poll). One round trip.
-- name: queue_claim_lock
SET LOCAL idle_in_transaction_session_timeout = '2s';
SET LOCAL lock_timeout = '2s';
SELECT pg_advisory_xact_lock(7243010011);

-- A status write and its events are one transaction: a node stalled inside it (SIGSTOP)
-- would hold the run's row, so its session ends after 5 s idle and the others go on.
-- name: runs_write_guard
SET LOCAL idle_in_transaction_session_timeout = '5s';

-- Running runs node $1 owns (after a claim whose answer was lost: they have no actor).
-- name: runs_list_owned
SELECT * FROM agent_runs WHERE lease_owner = $1 AND status = ANY($2::text[])
ORDER BY created_at, id;

-- A restarted actor keeps its running run, or a node takes over a dead node's run to
-- finish it ($4: the statuses it may hold it in; $5: the claim token it read, fencing).
-- name: runs_reclaim
UPDATE agent_runs
SET restart_count = restart_count + 1, lease_owner = $2,
    lease_expires_at = now() + make_interval(secs => $3), claim_token = claim_token + 1
WHERE id = $1 AND status = ANY($4::text[]) AND claim_token = $5
RETURNING *;

-- Every status write below takes, as its last parameter, how many events the same
-- transaction appends after it (0: none) and counts them in last_event_seq itself: the
-- events go in with events_append_counted, so the run's row is updated once per status
-- write, not a second time for its events (RunStore._write).

-- $7: the engine's result, recorded with the status (NULL: keep the recorded one), as
-- runs_record_outcome does under the same claim token. $8: the events' count.
-- name: runs_finish
UPDATE agent_runs
SET status = $2, error_message = $3, output_result = COALESCE($4, output_result),
    completed_at = clock_timestamp(), lease_owner = NULL, lease_expires_at = NULL,
    claim_token = claim_token + 1, engine_outcome = COALESCE($7, engine_outcome),
    last_event_seq = last_event_seq + $8::int
WHERE id = $1 AND status = ANY($5::text[]) AND claim_token = $6
RETURNING *;

-- $5: seconds a pause on an approval request may last (NULL: no approval, no expiry).
-- $7: the events' count.
-- name: runs_pause
UPDATE agent_runs
SET status = 'paused', checkpoint = $2, output_result = $3, lease_owner = NULL,
    lease_expires_at = NULL,
    approval_expires_at = now() + make_interval(secs => $5::float8),
    claim_token = claim_token + 1, last_event_seq = last_event_seq + $7::int
WHERE id = $1 AND status = ANY($4::text[]) AND claim_token = $6
RETURNING *;

-- The approval timeout (issue 12): fail a paused run only while its pause is expired,
-- under the claim token the writer read ($5). $6: the events' count.
-- name: runs_expire_approval
UPDATE agent_runs
SET status = $2, error_message = $3, completed_at = clock_timestamp(), lease_owner = NULL,
    lease_expires_at = NULL, claim_token = claim_token + 1,
    last_event_seq = last_event_seq + $6::int
WHERE id = $1 AND status = ANY($4::text[]) AND approval_expires_at < now()
  AND claim_token = $5
RETURNING *;

-- name: runs_list_approval_expired
SELECT id FROM agent_runs
WHERE status = 'paused' AND approval_expires_at < now()
ORDER BY approval_expires_at, id
LIMIT $1;

-- $5: the events' count.
-- name: runs_requeue
UPDATE agent_runs
SET status = 'queued', resume_payload = COALESCE($2, resume_payload), completed_at = NULL,
    lease_owner = NULL, lease_expires_at = NULL, claim_token = claim_token + 1,
    last_event_seq = last_event_seq + $5::int
WHERE id = $1 AND status = ANY($3::text[]) AND claim_token = $4
RETURNING *;

-- What a finished session run adds to its session's conversation (migration 0012): in the
-- transaction of the fenced status write that just landed, under the token it left ($3).
-- name: runs_set_session_turns
UPDATE agent_runs SET session_turns = $2 WHERE id = $1 AND claim_token = $3;

-- The owner's writes of what its engine reported carry its claim token ($3): refused
-- (0 rows) once another node took the run.
-- name: runs_record_outcome
UPDATE agent_runs SET engine_outcome = $2 WHERE id = $1 AND claim_token = $3;

-- name: runs_set_engine_ref
UPDATE agent_runs SET engine_run_ref = $2 WHERE id = $1 AND claim_token = $3;

-- The agent's checkpoint (contract 7.3): $2 the checkpoint revision, $3 the result
-- revision (NULL: keep the run's result, else the checkpoint).
-- name: runs_record_checkpoint
UPDATE agent_runs
SET checkpoint_revision_id = $2, result_revision_id = COALESCE($3, result_revision_id, $2)
WHERE id = $1 AND claim_token = $4;

-- A checkpoint restored through the API relinks the run it names (contract 1.9): a
-- person's action, not the run owner's, so it carries no claim token; only a run that has
-- ended (checked first by Checkpoints.restore; a terminal status is final), in the
-- restore's transaction.
-- name: runs_set_revisions
UPDATE agent_runs
SET result_revision_id = $2, checkpoint_revision_id = $3
WHERE id = $1
RETURNING *;

-- Auto-apply links the run to the revision it made, under the owner's claim token ($4),
-- in the transaction that creates the revision: refused, it rolls the revision back.
-- name: runs_apply_revisions
UPDATE agent_runs
SET result_revision_id = $2, checkpoint_revision_id = $3
WHERE id = $1 AND claim_token = $4
RETURNING id;

-- A write the owner makes outside agent_runs (a checkpoint tool's draft revision) holds
-- the run's row under its claim token ($2) until its transaction ends: no row, refused
-- (another node took the run); a take-over waits for the write to commit.
-- name: runs_hold_claim
SELECT id FROM agent_runs WHERE id = $1 AND claim_token = $2 FOR SHARE;

-- name: runs_heartbeat
UPDATE agent_runs
SET lease_expires_at = now() + make_interval(secs => $2)
WHERE lease_owner = $1 AND status = 'running';

-- Every running run's lease, its owner's last node heartbeat (NULL: no node row) and the
-- database's now (all compared on one clock).
-- name: runs_list_running_leases
SELECT r.id, r.lease_owner, r.lease_expires_at, n.heartbeat_at AS owner_heartbeat_at,
    now() AS now
FROM agent_runs r
LEFT JOIN runwright_nodes n ON n.node_id = r.lease_owner
WHERE r.status = 'running'
ORDER BY r.created_at, r.id;

-- name: runs_list_orphaned
-- Running runs of other nodes ($1: this node) whose owner is dead: its node heartbeat is
-- older than $2 s, or its lease lapsed (a node with no heartbeat row).
SELECT r.id FROM agent_runs r
LEFT JOIN runwright_nodes n ON n.node_id = r.lease_owner
WHERE r.status = 'running' AND r.lease_owner IS DISTINCT FROM $1
  AND (r.lease_expires_at < now() OR n.heartbeat_at < now() - make_interval(secs => $2))
ORDER BY r.created_at, r.id;

-- name: runs_live_among
-- Which of these runs are not terminal (queued, running or paused): they keep their
-- workspaces at start-up (runtime/run_workspaces.py).
SELECT id FROM agent_runs
WHERE id = ANY($1::uuid[]) AND status NOT IN ('completed', 'failed', 'cancelled');

-- One model or tool call's usage (migration 0010): the run_usage row and the run's sums in
-- one statement. $2 is the call's id: a repeated write inserts nothing and adds nothing,
-- and then answers the run as it is. $3 kind ('model' | 'tool'), $4 name, $5..$7 prompt,
-- completion and total tokens (NULL: not reported), $8 duration in ms (NULL: unknown).
-- A model call counts as unreported when it reported none of the three counts.
-- $9: the writer's claim token (fencing): the run's row is locked while it still holds it,
-- so once another node took the run nothing is inserted or added, and no row comes back.
-- The lock is FOR NO KEY UPDATE, the one the sums' UPDATE below takes anyway: a FOR SHARE
-- lock upgraded by that UPDATE deadlocked with an event batch doing the same on the row.
-- name: runs_record_usage
WITH owned AS (
    SELECT r.id, r.tenant_id, r.published_app_id, r.resolved_model_id FROM agent_runs r
    WHERE r.id = $1 AND r.claim_token = $9
    FOR NO KEY UPDATE
), call AS (
    INSERT INTO run_usage (
        id, run_id, tenant_id, published_app_id, model_id, kind, name,
        prompt_tokens, completion_tokens, total_tokens, duration_ms
    )
    SELECT $2, o.id, o.tenant_id, o.published_app_id, o.resolved_model_id, $3, $4, $5, $6,
        $7, $8
    FROM owned o
    ON CONFLICT (id) DO NOTHING
    RETURNING *
), updated AS (
    UPDATE agent_runs r SET
        usage_prompt_tokens = CASE WHEN c.prompt_tokens IS NULL THEN r.usage_prompt_tokens
            ELSE COALESCE(r.usage_prompt_tokens, 0) + c.prompt_tokens END,
        usage_completion_tokens = CASE WHEN c.completion_tokens IS NULL
            THEN r.usage_completion_tokens
            ELSE COALESCE(r.usage_completion_tokens, 0) + c.completion_tokens END,
        usage_total_tokens = CASE WHEN c.total_tokens IS NULL THEN r.usage_total_tokens
            ELSE COALESCE(r.usage_total_tokens, 0) + c.total_tokens END,
        usage_model_calls = r.usage_model_calls + (c.kind = 'model')::int,
        usage_model_calls_unreported = r.usage_model_calls_unreported
            + (c.kind = 'model' AND c.prompt_tokens IS NULL AND c.completion_tokens IS NULL
               AND c.total_tokens IS NULL)::int,
        usage_model_ms = r.usage_model_ms
            + CASE WHEN c.kind = 'model' THEN COALESCE(c.duration_ms, 0) ELSE 0 END,
        usage_tool_calls = r.usage_tool_calls + (c.kind = 'tool')::int,
        usage_tool_ms = r.usage_tool_ms
            + CASE WHEN c.kind = 'tool' THEN COALESCE(c.duration_ms, 0) ELSE 0 END
    FROM call c
    WHERE r.id = c.run_id
    RETURNING r.*
)
SELECT * FROM updated
UNION ALL
SELECT a.* FROM agent_runs a JOIN owned o ON o.id = a.id
WHERE NOT EXISTS (SELECT 1 FROM updated);
