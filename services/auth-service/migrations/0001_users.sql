CREATE TABLE users (
    id            UUID PRIMARY KEY,
    -- Stored lower-cased, so the unique constraint ignores case.
    email         TEXT NOT NULL CONSTRAINT users_email_key UNIQUE,
    username      TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('USER', 'ADMIN')),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The database-managed token signing key, used when none is given by configuration.
-- One row, so that replicas starting together agree on the same key.
CREATE TABLE signing_key (
    id              SMALLINT PRIMARY KEY CHECK (id = 1),
    private_key_pem TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
