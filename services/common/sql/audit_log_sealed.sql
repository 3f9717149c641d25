-- The audit trail records security events too, and seals entries with a key that is
-- not in the database (pulsetrack_common::audit, entry version 2): `hash` becomes an
-- HMAC-SHA256 under the service's AUDIT_KEY. Entries already written keep version 1
-- (their unkeyed SHA-256); `verify` takes version 1 only before the first version 2.
-- One file, linked into each audited service's migrations, like audit_log.sql.
ALTER TABLE audit_log
    -- What an event was done to, other than patients (an account id, a route).
    ADD COLUMN subject TEXT,
    -- Why or how (a login failure's reason, a role change's old and new role).
    ADD COLUMN detail TEXT,
    -- How many events the entry stands for (the gateway's refusals, per minute).
    ADD COLUMN count INTEGER NOT NULL DEFAULT 1 CHECK (count > 0),
    ADD COLUMN version SMALLINT NOT NULL DEFAULT 1;
-- Every new entry names both itself.
ALTER TABLE audit_log ALTER COLUMN count DROP DEFAULT, ALTER COLUMN version DROP DEFAULT;
-- From now on only keyed entries are written: whoever can insert (the service's role)
-- cannot slip in an unkeyed one that verify would take as part of the legacy prefix.
-- NOT VALID: the entries already there keep their version 1.
ALTER TABLE audit_log ADD CONSTRAINT audit_log_keyed CHECK (version = 2) NOT VALID;
