-- Sessions, revocation and the account lifecycle (issue 33).

-- The role model: USER becomes the ordinary account with patient access (the seed's),
-- and the account that waits for an ADMIN's approval is PENDING. Every account that
-- was USER was waiting, so it is PENDING now: nobody's access widens.
ALTER TABLE users DROP CONSTRAINT users_role_check;
UPDATE users SET role = 'PENDING' WHERE role = 'USER';
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('PENDING', 'USER', 'CLINICIAN', 'BILLING', 'AUDITOR', 'ADMIN'));

-- A disabled account cannot log in or refresh, and its sessions have ended.
ALTER TABLE users ADD COLUMN status TEXT NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'DISABLED'));
-- The strongest rule the current password meets (auth_service::password::PasswordGrade);
-- passwords set before it was recorded met the basic rule only.
ALTER TABLE users ADD COLUMN password_grade TEXT NOT NULL DEFAULT 'basic'
    CHECK (password_grade IN ('basic', 'strong', 'privileged'));
ALTER TABLE users ADD COLUMN password_changed_at TIMESTAMPTZ NOT NULL DEFAULT now();
-- Set when a role grant needs a stronger password than the account's: its next login
-- gets a token that may only change the password.
ALTER TABLE users ADD COLUMN must_change_password BOOLEAN NOT NULL DEFAULT false;
-- The seeded admin: its password is PULSETRACK_ADMIN_PASSWORD, set at start, and the
-- API does not change it.
ALTER TABLE users ADD COLUMN managed_by_secret BOOLEAN NOT NULL DEFAULT false;

-- One login: the access tokens it issues carry its id (`sid`). It ends at logout, at
-- its idle or absolute limit (enforced at refresh), or when an event ends it.
CREATE TABLE sessions (
    id              UUID PRIMARY KEY,
    user_id         UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_refresh_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at      TIMESTAMPTZ NOT NULL,
    client_addr     TEXT,
    ended_at        TIMESTAMPTZ,
    end_reason      TEXT
);
CREATE INDEX sessions_live_by_user ON sessions (user_id) WHERE ended_at IS NULL;

-- Refresh tokens, stored only as SHA-256 digests (they are 256-bit random values).
-- One is live per session; a spent one is kept so that presenting it again is seen
-- as theft and ends the session.
CREATE TABLE refresh_tokens (
    token_digest BYTEA PRIMARY KEY,
    session_id   UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    spent_at     TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

-- Ended sessions whose access tokens may still be unexpired: what the gateways follow
-- (GET /internal/revocations?after=<seq>). Revocations are written one transaction at
-- a time (an advisory lock held to commit), so they commit in `seq` order and a
-- follower that has read a row has read every row before it. A row is needed only
-- until every token of its session has expired (`until`), and is pruned after.
CREATE TABLE revocations (
    seq        BIGSERIAL PRIMARY KEY,
    session_id UUID NOT NULL,
    revoked_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    until      TIMESTAMPTZ NOT NULL
);

-- One-time password reset tokens an ADMIN hands over, as SHA-256 digests.
CREATE TABLE password_resets (
    token_digest BYTEA PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_by   UUID NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL,
    used_at      TIMESTAMPTZ
);

-- Failed logins are counted per address, whether or not an account has it, so that a
-- lockout answers a known and an unknown address alike. Rows older than the
-- forgetting window are pruned.
DROP TABLE login_failures;
CREATE TABLE login_failures (
    email          TEXT PRIMARY KEY,
    failures       INTEGER NOT NULL CHECK (failures > 0),
    last_failed_at TIMESTAMPTZ NOT NULL,
    locked_until   TIMESTAMPTZ
);
CREATE INDEX login_failures_by_age ON login_failures (last_failed_at);
