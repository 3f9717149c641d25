-- The dispatcher keeps one patient's rows in order: a row waits while an older row of
-- the same patient and destination is pending. An older pending row is either in the
-- same pass (a pass takes the due rows in id order, and a row on its first attempt is
-- always due), which the dispatcher sees itself, or one whose delivery failed and that
-- now waits for its retry (attempts > 0). So the check needs an index over failed rows
-- only, which is empty while deliveries succeed, instead of one over every pending row:
-- a new outbox row writes two index entries instead of three, and a pass no longer
-- probes an index per row it claims.
DROP INDEX outbox_per_patient;
CREATE INDEX outbox_retrying ON outbox (destination, aggregate_id, id) WHERE attempts > 0 AND dead_at IS NULL;
