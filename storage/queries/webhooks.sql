-- Completion webhooks (migration 0011): the tenants' signing secrets and the delivery
-- outbox. Outbox rows are inserted by the status-write trigger of migration 0011, never here.

-- Create or replace (rotate) a tenant's secret; $2 is the sealed secret.
-- name: webhook_secret_set
INSERT INTO tenant_webhook_secrets (tenant_id, secret_ciphertext)
VALUES ($1, $2)
ON CONFLICT (tenant_id) DO UPDATE
    SET secret_ciphertext = EXCLUDED.secret_ciphertext,
        version = tenant_webhook_secrets.version + 1, created_at = now()
RETURNING tenant_id, version, created_at;

-- name: webhook_secret_get
SELECT tenant_id, secret_ciphertext, version, created_at FROM tenant_webhook_secrets
WHERE tenant_id = $1;

-- Claim up to $1 due deliveries for one attempt each, fair across tenants:
--   $2  the attempt's lease, seconds: the row is not due again until it ends, so other
--       nodes skip it, now (SKIP LOCKED) and while it is in flight
--   $3  per-tenant cap on attempts in flight, counted across all nodes
-- Fairness, as the run queue's (runs_claim_next): a tenant's k-th oldest due delivery gets
-- turn (its attempts in flight + k); deliveries are taken by turn, then due time. So
-- tenants take turns, one with many attempts in flight (a receiver that never answers holds
-- each for the whole timeout) yields to one with few, and none holds more than $3 slots
-- of the whole deployment: a tenant whose receiver black-holes delays only its own
-- deliveries. Callers hold the claim lock (webhooks_claim_lock) in the same transaction,
-- so the counts see every earlier claim and the cap holds. The attempt counter (the
-- fencing token of this attempt) goes up. The tenant's sealed secret comes along (NULL
-- when it has none).
-- name: webhooks_claim
WITH inflight AS (
    SELECT tenant_id, count(*) AS n FROM webhook_deliveries
    WHERE state = 'pending' AND lease_expires_at > now()
    GROUP BY tenant_id
), ranked AS (
    SELECT d.id, d.next_attempt_at,
        COALESCE(i.n, 0)
            + row_number() OVER (PARTITION BY d.tenant_id ORDER BY d.next_attempt_at, d.id)
            AS turn
    FROM webhook_deliveries d
    LEFT JOIN inflight i ON i.tenant_id = d.tenant_id
    WHERE d.state = 'pending' AND d.next_attempt_at <= now()
), picked AS (
    SELECT r.id FROM ranked r
    WHERE r.turn <= $3
    ORDER BY r.turn, r.next_attempt_at, r.id
    LIMIT $1
), due AS (
    SELECT d.id FROM webhook_deliveries d
    WHERE d.id IN (SELECT id FROM picked) AND d.state = 'pending' AND d.next_attempt_at <= now()
    FOR UPDATE SKIP LOCKED
)
UPDATE webhook_deliveries d
SET attempts = d.attempts + 1, last_attempt_at = now(),
    next_attempt_at = now() + make_interval(secs => $2),
    lease_expires_at = now() + make_interval(secs => $2)
FROM due
WHERE d.id = due.id
RETURNING d.id, d.tenant_id, d.run_id, d.url, d.event, d.run, d.attempts, d.created_at,
    (SELECT s.secret_ciphertext FROM tenant_webhook_secrets s
     WHERE s.tenant_id = d.tenant_id) AS secret_ciphertext;

-- Serialises delivery claims across nodes for the rest of the transaction (the per-tenant
-- caps above are counted, so two claims must not count at once). Bounded as the run
-- queue's lock (queue_claim_lock): a node stalled inside its claim loses its session after
-- 2 s idle, and a claim waits at most 2 s for the lock (then fails; the next poll retries).
-- name: webhooks_claim_lock
SET LOCAL idle_in_transaction_session_timeout = '2s';
SET LOCAL lock_timeout = '2s';
SELECT pg_advisory_xact_lock(7243010016);

-- The outcome of attempt $2 of delivery $1; a no-op when that attempt no longer holds the
-- row (its lease lapsed and another attempt claimed it). Each outcome ends the lease, so
-- the attempt no longer counts against the tenant's cap.
-- name: webhooks_delivered
UPDATE webhook_deliveries
SET state = 'delivered', delivered_at = now(), last_status_code = $3, last_error = NULL,
    lease_expires_at = NULL
WHERE id = $1 AND attempts = $2 AND state = 'pending';

-- $3 seconds until the next attempt; $4 the HTTP status (NULL: no response), $5 the error.
-- name: webhooks_retry
UPDATE webhook_deliveries
SET next_attempt_at = now() + make_interval(secs => $3), last_status_code = $4,
    last_error = $5, lease_expires_at = NULL
WHERE id = $1 AND attempts = $2 AND state = 'pending';

-- name: webhooks_failed
UPDATE webhook_deliveries
SET state = 'failed', last_status_code = $3, last_error = $4, lease_expires_at = NULL
WHERE id = $1 AND attempts = $2 AND state = 'pending';

-- A run's deliveries, oldest first (the run is scoped by tenant as well).
-- name: webhooks_list_for_run
SELECT id, run_id, url, event, state, attempts, next_attempt_at, last_attempt_at,
    last_status_code, last_error, created_at, delivered_at
FROM webhook_deliveries
WHERE run_id = $1 AND tenant_id = $2
ORDER BY created_at, id;
