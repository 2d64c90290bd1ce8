-- Webhook delivery fair across tenants (docs/architecture.md "Webhook outbox").
--
-- lease_expires_at: set by a claim to the end of the attempt's lease (the same instant as
--   next_attempt_at then), cleared when the attempt's outcome is recorded. A pending row
--   with lease_expires_at > now() is an attempt in flight on some node; the claim counts
--   them per tenant, across every node, to cap each tenant's share of the delivery slots.
--   A lapsed lease (its node died mid-attempt) stops counting by itself.
ALTER TABLE webhook_deliveries ADD COLUMN lease_expires_at timestamptz;

-- The claim counts in-flight attempts by tenant and takes due rows tenant by tenant.
CREATE INDEX webhook_deliveries_inflight_idx ON webhook_deliveries (tenant_id, lease_expires_at)
    WHERE state = 'pending' AND lease_expires_at IS NOT NULL;
