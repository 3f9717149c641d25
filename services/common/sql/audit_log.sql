-- The audit trail (pulsetrack_common::audit): every access to patient data in this
-- service. One file, linked into each audited service's migrations.
-- Append-only: the service's role may INSERT and SELECT only (the grants in
-- pulsetrack_common::db), and the triggers below refuse UPDATE, DELETE and TRUNCATE
-- from anyone, the owner included. Tamper-evident: `hash` covers the entry's fields
-- and `prev_hash`, the hash of entry seq - 1, so a changed or removed row breaks the
-- chain that `<service> verify-audit` walks.
CREATE TABLE audit_log (
    seq          BIGINT PRIMARY KEY CHECK (seq > 0),
    at           TIMESTAMPTZ NOT NULL,
    service      TEXT NOT NULL,
    actor_id     TEXT NOT NULL,
    actor_role   TEXT NOT NULL,
    action       TEXT NOT NULL,
    patient_ids  UUID[] NOT NULL,
    -- The HTTP status the caller got.
    outcome      SMALLINT NOT NULL,
    request_id   TEXT,
    client_addr  TEXT,
    prev_hash    BYTEA NOT NULL,
    hash         BYTEA NOT NULL
);

CREATE INDEX audit_log_patients ON audit_log USING gin (patient_ids);
CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
