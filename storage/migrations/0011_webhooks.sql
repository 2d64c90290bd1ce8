-- Completion webhooks (issue 12 item 5, docs/architecture.md "Webhook outbox").
--
-- tenant_webhook_secrets: one signing secret per tenant, sealed with the server's secrets key
--   (runtime/secret_box.py, context "runwright:webhook-secret:<tenant>:<version>"); the
--   plaintext is shown once, when it is created or rotated. `version` counts rotations.
CREATE TABLE tenant_webhook_secrets (
    tenant_id          uuid PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    secret_ciphertext  bytea NOT NULL,
    version            integer NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now()
);

-- webhook_deliveries: the durable outbox. A row is inserted by the trigger below, inside
-- the statement that writes a run's terminal (or paused) status, whichever statement that
-- is, so a run whose status committed always has its delivery, whatever crashes next.
--   id: the delivery id, sent as Runwright-Delivery on every attempt (receivers dedupe).
--   run: the run row as that status write left it (large inputs left out); the body is
--     the run object rendered from it, the same bytes on every attempt.
--   state: pending -> delivered | failed.
--   attempts: attempts started; also the fencing token of the current attempt (a claim
--     bumps it, and an outcome is recorded only for the attempt that holds it).
--   next_attempt_at: when a pending row is due; a claim pushes it past the attempt's
--     timeout (a lease), so a node that dies mid-attempt leaves it due again later.
CREATE TABLE webhook_deliveries (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id         uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    run_id            uuid NOT NULL REFERENCES agent_runs(id) ON DELETE CASCADE,
    url               text NOT NULL,
    event             text NOT NULL,
    run               jsonb NOT NULL,
    state             text NOT NULL DEFAULT 'pending'
                      CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    last_attempt_at   timestamptz,
    last_status_code  integer,
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    delivered_at      timestamptz
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_run_idx ON webhook_deliveries (run_id, created_at);

-- Every status write that moves a run with a `webhook` (input_params) to completed, failed,
-- cancelled or paused queues its delivery in the same statement (an AFTER ROW trigger runs
-- inside it): no writer of a terminal status (the actor's finish, the approval timeout,
-- any added later) can forget it, and a conditional write that moves nothing queues
-- nothing. The snapshot leaves out the large inputs and engine state.
CREATE FUNCTION queue_run_webhook() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (tenant_id, run_id, url, event, run)
    VALUES (NEW.tenant_id, NEW.id, NEW.input_params->>'webhook', 'run.' || NEW.status,
            to_jsonb(NEW) - ARRAY['input_params', 'checkpoint', 'resume_payload',
                                  'engine_outcome', 'output_result', 'session_turns']);
    RETURN NULL;
END
$$;

CREATE TRIGGER agent_runs_queue_webhook
    AFTER UPDATE OF status ON agent_runs
    FOR EACH ROW
    WHEN (NEW.status IN ('completed', 'failed', 'cancelled', 'paused')
          AND OLD.status IS DISTINCT FROM NEW.status
          AND NEW.input_params->>'webhook' IS NOT NULL)
    EXECUTE FUNCTION queue_run_webhook();
