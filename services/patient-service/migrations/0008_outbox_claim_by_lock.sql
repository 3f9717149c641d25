-- One dispatcher at a time delivers each destination: a pass holds the destination's
-- advisory lock in a transaction it keeps open while it delivers, instead of writing a
-- lease into every row (an UPDATE of the row and of each of its indexes): the lease
-- columns go. Postgres releases the lock of a dispatcher that died at once (its
-- connection closed) and ends one that hung after its idle-in-transaction timeout. A
-- replica still running the previous version fails its outbox passes (logged, nothing
-- lost) until it is replaced.
ALTER TABLE outbox DROP COLUMN claimed_until, DROP COLUMN claim_token;
