-- One patient create as one commit: the patient row and its two outbox rows (the
-- billing request and the PatientEvent, ~100-byte payloads), as patient-service writes them.
\set n random(1, 1000000000)
BEGIN;
INSERT INTO patients (id, name, email, address, date_of_birth, registered_date)
  VALUES (gen_random_uuid(), 'Bench Patient', 'bench-' || :client_id || '-' || :n || '-' || random() || '@example.com',
          '1 Main Street', '1980-01-01', current_date);
INSERT INTO outbox (destination, aggregate_id, payload)
  VALUES ('billing', gen_random_uuid(), decode(repeat('ab', 80), 'hex'));
INSERT INTO outbox (destination, aggregate_id, payload)
  VALUES ('patient-event', gen_random_uuid(), decode(repeat('cd', 120), 'hex'));
COMMIT;
