CREATE TABLE patients (
    -- UUIDv7: time-ordered, so ORDER BY id is a stable creation order backed by the key.
    id              UUID PRIMARY KEY,
    name            TEXT NOT NULL,
    -- Stored lower-cased, so the unique constraint ignores case.
    email           TEXT NOT NULL CONSTRAINT patients_email_key UNIQUE,
    address         TEXT NOT NULL,
    date_of_birth   DATE NOT NULL,
    registered_date DATE NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
