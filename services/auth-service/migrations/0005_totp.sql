-- A second factor: TOTP (RFC 6238) and single-use recovery codes (issue 33).

-- The authenticator's shared secret, sealed (ChaCha20-Poly1305, the account id as
-- associated data) with a key derived from MFA_ENCRYPTION_KEY, which is not in the
-- database. Set at enrolment; enrolled once a code was verified.
ALTER TABLE users ADD COLUMN totp_secret BYTEA;
ALTER TABLE users ADD COLUMN totp_enrolled_at TIMESTAMPTZ;
-- The time step of the last code accepted: a code is refused a second time.
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;

-- Ten per enrolment, as SHA-256 digests (60-bit random codes); each one used once.
CREATE TABLE recovery_codes (
    code_digest BYTEA PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    used_at     TIMESTAMPTZ
);
CREATE INDEX recovery_codes_by_user ON recovery_codes (user_id);
