-- The run event log (DESIGN.md section 4). Batches go in with one statement.

-- name: events_write_batch
-- Insert a batch and advance each run's last_event_seq: one statement (one round trip, atomic).
-- Each run of the batch is announced on rw_events as '<run_id>:<last_event_seq>' (streams on
-- other nodes wake on it); NOTIFY is delivered only when the transaction commits.
WITH v AS (
    SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::timestamptz[]) AS v(r, s, t, st, p, d, ts)
), ins AS (
    INSERT INTO run_events (run_id, seq, type, stage, payload, diagnostics, ts)
    SELECT r, s, t, st, p::json, d::json, ts FROM v
    ON CONFLICT (run_id, seq) DO NOTHING
), upd AS (
    UPDATE agent_runs a
    SET last_event_seq = GREATEST(a.last_event_seq, m.seq)
    FROM (SELECT r, max(s) AS seq FROM v GROUP BY r) AS m
    WHERE a.id = m.r
    RETURNING a.id, a.last_event_seq
)
SELECT pg_notify('rw_events', upd.id::text || ':' || upd.last_event_seq::text) FROM upd;

-- name: events_from
-- Events with seq >= $2, in order; payloads as their stored text (byte-identical replay).
SELECT seq, type, stage, payload::text AS payload, diagnostics::text AS diagnostics, ts
FROM run_events
WHERE run_id = $1 AND seq >= $2
ORDER BY seq
LIMIT $3;

-- name: events_last_seq
SELECT last_event_seq FROM agent_runs WHERE id = $1;

-- name: events_turn_text
-- The assistant text already logged in the run's current turn: every assistant.delta after
-- the last run.completed (a paused run's stream ends with one; its resume starts a new turn).
SELECT coalesce(string_agg(payload->>'content', '' ORDER BY seq), '')
FROM run_events
WHERE run_id = $1 AND type = 'assistant.delta'
  AND seq > coalesce(
      (SELECT max(seq) FROM run_events WHERE run_id = $1 AND type = 'run.completed'), 0);

-- name: events_last_seqs
-- The highest stored seq of each of the runs $1 (the poll behind cross-node streams).
SELECT id, last_event_seq FROM agent_runs WHERE id = ANY($1::uuid[]);
