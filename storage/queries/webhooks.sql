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

-- Claim up to $1 due deliveries for one attempt each: the attempt counter (the fencing
-- token of this attempt) goes up and the row is not due again for $2 seconds (the
-- attempt's lease), so other nodes skip it, now (SKIP LOCKED) and while it is in flight.
-- The tenant's sealed secret comes along (NULL when it has none).
-- name: webhooks_claim
WITH due AS (
    SELECT id FROM webhook_deliveries
    WHERE state = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at, id
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE webhook_deliveries d
SET attempts = d.attempts + 1, last_attempt_at = now(),
    next_attempt_at = now() + make_interval(secs => $2)
FROM due
WHERE d.id = due.id
RETURNING d.id, d.tenant_id, d.run_id, d.url, d.event, d.run, d.attempts, d.created_at,
    (SELECT s.secret_ciphertext FROM tenant_webhook_secrets s
     WHERE s.tenant_id = d.tenant_id) AS secret_ciphertext;

-- The outcome of attempt $2 of delivery $1; a no-op when that attempt no longer holds the
-- row (its lease lapsed and another attempt claimed it).
-- name: webhooks_delivered
UPDATE webhook_deliveries
SET state = 'delivered', delivered_at = now(), last_status_code = $3, last_error = NULL
WHERE id = $1 AND attempts = $2 AND state = 'pending';

-- $3 seconds until the next attempt; $4 the HTTP status (NULL: no response), $5 the error.
-- name: webhooks_retry
UPDATE webhook_deliveries
SET next_attempt_at = now() + make_interval(secs => $3), last_status_code = $4,
    last_error = $5
WHERE id = $1 AND attempts = $2 AND state = 'pending';

-- name: webhooks_failed
UPDATE webhook_deliveries
SET state = 'failed', last_status_code = $3, last_error = $4
WHERE id = $1 AND attempts = $2 AND state = 'pending';

-- A run's deliveries, oldest first (the run is scoped by tenant as well).
-- name: webhooks_list_for_run
SELECT id, run_id, url, event, state, attempts, next_attempt_at, last_attempt_at,
    last_status_code, last_error, created_at, delivered_at
FROM webhook_deliveries
WHERE run_id = $1 AND tenant_id = $2
ORDER BY created_at, id;
