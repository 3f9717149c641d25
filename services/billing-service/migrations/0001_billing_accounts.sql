CREATE TABLE billing_accounts (
    id          UUID PRIMARY KEY,
    -- One account per patient: CreateBillingAccount is idempotent on it.
    patient_id  UUID NOT NULL CONSTRAINT billing_accounts_patient_id_key UNIQUE,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('ACTIVE', 'SUSPENDED', 'CLOSED')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
