-- The run event log (DESIGN.md section 4). Batches go in with one statement.

-- name: events_append_counted
-- The events of a status write, in its transaction, after the status statement that
-- already counted them in the run's last_event_seq (runs.sql: runs_finish and the other
-- status writes), so the run's row is not updated a second time. That statement holds the
-- run's row, so no other writer stores or counts events of the run in between. Each run is
-- announced as events_write_fenced does ('<run_id>:<seq>:<origin>', $8: the writing node's
-- id, sent on commit); its highest seq here is its last_event_seq.
WITH v AS (
    SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::timestamptz[]) AS v(r, s, t, st, p, d, ts)
), ins AS (
    INSERT INTO run_events (run_id, seq, type, stage, payload, diagnostics, ts)
    SELECT r, s, t, st, p::json, d::json, ts FROM v
    ON CONFLICT (run_id, seq) DO NOTHING
)
SELECT pg_notify('rw_events', v.r::text || ':' || max(v.s)::text || ':' || $8::text)
FROM v GROUP BY v.r;

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

-- name: events_write_fenced
-- The one batch insert (any runs, any order; EventStore.insert_batch and insert_fenced; a status write's
-- events: events_append_counted):
-- insert the events and advance each run's last_event_seq in one statement (one round
-- trip, atomic). Fenced (docs/design.md 9): $8 is each event's claim token (NULL:
-- unfenced). A run's events are stored only while the run still holds that token; its row
-- is locked first (in id order), so a take-over (which bumps the token) waits for this
-- statement or is seen by it. The lock is FOR NO KEY UPDATE, the one the last_event_seq
-- UPDATE below takes anyway: FOR SHARE, upgraded by that UPDATE, deadlocked with a
-- concurrent usage write (runs_record_usage) doing the same on the row. Events of a run
-- that does not exist are not stored (and not refused).
-- Each run whose last_event_seq moved is announced on rw_events as
-- '<run_id>:<last_event_seq>:<origin>' ($9: the writing node's id, '' when none; streams
-- on other nodes wake on it, the writing node ignores its own: it publishes what it wrote
-- itself); NOTIFY is delivered only when the transaction commits. A run whose events were
-- all counted before (a retried batch) is not updated (a new row version that changes
-- nothing) nor announced again (its first commit was).
-- Returns the runs whose events were refused.
WITH v AS (
    SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::timestamptz[], $8::bigint[])
        AS v(r, s, t, st, p, d, ts, tok)
), held AS (
    SELECT a.id, a.claim_token FROM agent_runs a
    WHERE a.id IN (SELECT r FROM v)
    ORDER BY a.id
    FOR NO KEY UPDATE
), ok AS (
    SELECT v.* FROM v JOIN held h ON h.id = v.r
    WHERE v.tok IS NULL OR v.tok = h.claim_token
), ins AS (
    INSERT INTO run_events (run_id, seq, type, stage, payload, diagnostics, ts)
    SELECT r, s, t, st, p::json, d::json, ts FROM ok
    ON CONFLICT (run_id, seq) DO NOTHING
), upd AS (
    UPDATE agent_runs a
    SET last_event_seq = m.seq
    FROM (SELECT r, max(s) AS seq FROM ok GROUP BY r) AS m
    WHERE a.id = m.r AND a.last_event_seq < m.seq
    -- The announcement is in the RETURNING of a data-modifying CTE, which always runs to
    -- completion: a plain CTE runs only when the main query reads it, and the join with
    -- the refused runs below reads nothing when none was refused (so a batch that stored
    -- everything was not announced, and other nodes' streams waited for their slow poll).
    RETURNING pg_notify('rw_events',
                        a.id::text || ':' || a.last_event_seq::text || ':' || $9::text)
)
SELECT DISTINCT v.r AS run_id FROM v
WHERE EXISTS (SELECT 1 FROM held h WHERE h.id = v.r)
  AND NOT EXISTS (SELECT 1 FROM ok WHERE ok.r = v.r AND ok.s = v.s);
