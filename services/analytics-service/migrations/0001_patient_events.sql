CREATE TABLE patient_events (
    -- The producer's unique event id: a redelivered event inserts nothing.
    event_id        UUID PRIMARY KEY,
    patient_id      UUID NOT NULL,
    event_type      TEXT NOT NULL,
    name            TEXT NOT NULL,
    email           TEXT NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    kafka_partition INTEGER NOT NULL,
    kafka_offset    BIGINT NOT NULL
);

CREATE INDEX patient_events_patient ON patient_events (patient_id, occurred_at);
CREATE INDEX patient_events_type_day ON patient_events (event_type, occurred_at);
