-- The audit trail's index of patient ids writes each entry straight into the index
-- instead of GIN's pending list (fastupdate). An entry names one patient, or the few
-- of a page, so the list saved nothing; but once it held 4 MB, the INSERT that found it
-- full merged all of it into the index (measured: over 128 ms), and every request
-- waiting for that batch of entries waited as long (bench/ISSUE17.md, 2026-12-06).
-- One file, linked into each audited service's migrations, like audit_log.sql.
ALTER INDEX audit_log_patients SET (fastupdate = off);
-- Turning it off does not empty the list; this does.
SELECT gin_clean_pending_list('audit_log_patients'::regclass);
