-- The tables a patient create commits to (as in patient-service's migrations), for
-- pgbench: the same rows, indexes and constraints, without the services around them.
DROP TABLE IF EXISTS patients, outbox;
CREATE TABLE patients (
    id              UUID PRIMARY KEY,
    name            TEXT NOT NULL,
    email           TEXT NOT NULL CONSTRAINT patients_email_key UNIQUE,
    address         TEXT NOT NULL,
    date_of_birth   DATE NOT NULL,
    registered_date DATE NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    destination     TEXT NOT NULL CHECK (destination IN ('billing', 'patient-event')),
    aggregate_id    UUID NOT NULL,
    payload         BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT,
    dead_at         TIMESTAMPTZ
);
CREATE INDEX outbox_pending ON outbox (destination, id) WHERE dead_at IS NULL;
CREATE INDEX outbox_per_patient ON outbox (destination, aggregate_id, id) WHERE dead_at IS NULL;
