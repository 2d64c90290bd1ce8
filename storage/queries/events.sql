-- The run event log (DESIGN.md section 4). Batches go in with one statement.

-- name: events_write_batch
-- Insert a batch and advance each run's last_event_seq: one statement (one round trip, atomic).
WITH v AS (
    SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::timestamptz[]) AS v(r, s, t, st, p, d, ts)
), ins AS (
    INSERT INTO run_events (run_id, seq, type, stage, payload, diagnostics, ts)
    SELECT r, s, t, st, p::json, d::json, ts FROM v
    ON CONFLICT (run_id, seq) DO NOTHING
)
UPDATE agent_runs a
SET last_event_seq = GREATEST(a.last_event_seq, m.seq)
FROM (SELECT r, max(s) AS seq FROM v GROUP BY r) AS m
WHERE a.id = m.r;

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
