-- The clinic's roles (pulsetrack_common::identity::Role): USER (no access to patient
-- data, an account waiting for approval), CLINICIAN, BILLING, AUDITOR, ADMIN.
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('USER', 'CLINICIAN', 'BILLING', 'AUDITOR', 'ADMIN'));
-- Who changed an account's role last, and when (the ADMIN's user id).
ALTER TABLE users ADD COLUMN role_changed_by UUID;
ALTER TABLE users ADD COLUMN role_changed_at TIMESTAMPTZ;

-- Consecutive failed logins of an account, and until when it is locked. A row exists
-- only for an account that failed since its last successful login; unknown emails are
-- throttled per client address in memory instead, so this table cannot be grown by
-- guessing emails.
CREATE TABLE login_failures (
    user_id        UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    failures       INTEGER NOT NULL CHECK (failures > 0),
    last_failed_at TIMESTAMPTZ NOT NULL,
    locked_until   TIMESTAMPTZ
);
