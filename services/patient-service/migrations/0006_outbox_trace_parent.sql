-- The W3C traceparent of the request that wrote the row: its delivery (the gRPC call,
-- the Kafka message) continues that request's trace.
ALTER TABLE outbox ADD COLUMN trace_parent TEXT;
