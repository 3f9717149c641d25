-- A deleted patient's billing account is closed through the outbox too
-- ('billing-close': billing-service's CloseBillingAccount).
ALTER TABLE outbox DROP CONSTRAINT outbox_destination_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_destination_check
    CHECK (destination IN ('billing', 'billing-close', 'patient-event'));
