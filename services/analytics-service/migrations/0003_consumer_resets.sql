-- A consumer that saw its topic vanish (deleted, or a broker that came back empty)
-- ends its process; it leaves a row here so that its successor reads the new topic
-- from the beginning instead of from the group's committed offsets, which may belong
-- to the old topic (an offset commit librdkafka retried until the topic existed
-- again). Replay is harmless: an event id is stored once. The successor deletes the
-- row once it has been assigned the topic's partitions from the beginning.
CREATE TABLE consumer_resets (
    topic        TEXT PRIMARY KEY,
    requested_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
