-- The dispatcher claims rows with a lease instead of holding a transaction (and its row
-- locks) open while it delivers: a claimed row is not handed to another dispatcher
-- until `claimed_until` has passed, so a dispatcher that died mid-delivery delays its
-- rows by one lease, never longer.
ALTER TABLE outbox
    ADD COLUMN claimed_until TIMESTAMPTZ,
    -- The claim that holds the row: a dispatcher records a failure only on its own claim.
    ADD COLUMN claim_token UUID,
    -- How many deliveries in a row failed with the same `last_error`; a row whose
    -- failures are not plainly transient is marked dead when this reaches a limit.
    ADD COLUMN same_failures INTEGER NOT NULL DEFAULT 0;
