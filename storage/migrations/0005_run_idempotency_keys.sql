-- Idempotency-Key on run creation (IETF draft-ietf-httpapi-idempotency-key-header): one row
-- per (tenant, app, principal, key), written in the same statement as the run it created,
-- so concurrent duplicates create exactly one run (the primary key decides, not the caller).
--   fingerprint: sha256 of the request body in canonical JSON; another body with the same
--     key is refused (422).
--   response: the create response as first sent (`json`, not `jsonb`, keeps its exact
--     text and field order), returned again for a repeated request.
--   expires_at: after it the key is free again (RUNWRIGHT_IDEMPOTENCY_KEY_TTL_SECONDS);
--     expired rows are swept in batches.
CREATE TABLE run_idempotency_keys (
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    app_id       uuid NOT NULL REFERENCES published_apps(id) ON DELETE CASCADE,
    principal    text NOT NULL,
    idem_key     text NOT NULL,
    fingerprint  text NOT NULL,
    run_id       uuid NOT NULL REFERENCES agent_runs(id) ON DELETE CASCADE,
    response     json,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, app_id, principal, idem_key)
);
CREATE INDEX run_idempotency_keys_expiry_idx ON run_idempotency_keys (expires_at);
CREATE INDEX run_idempotency_keys_run_idx ON run_idempotency_keys (run_id);
