-- Transactional outbox: work that must follow a patient change, written in the same
-- transaction as the change and delivered by the background dispatcher.
CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    -- 'billing': a BillingRequest for billing-service (gRPC);
    -- 'patient-event': a PatientEvent for Kafka topic `patient`.
    destination     TEXT NOT NULL CHECK (destination IN ('billing', 'patient-event')),
    -- The patient id; also the Kafka message key.
    aggregate_id    UUID NOT NULL,
    -- Protobuf-encoded message.
    payload         BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT,
    -- Set when delivery failed permanently (the receiver rejected the message).
    dead_at         TIMESTAMPTZ
);

CREATE INDEX outbox_pending ON outbox (destination, id) WHERE dead_at IS NULL;
-- Per-patient ordering check of the dispatcher.
CREATE INDEX outbox_per_patient ON outbox (destination, aggregate_id, id) WHERE dead_at IS NULL;
