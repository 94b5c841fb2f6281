-- Students who come back: a ticket the leader passed over as abandoned
-- keeps its turn when its student returns within the reclaim window.
--
-- skipped_at:   when the leader skipped the ticket (the window starts here).
-- reclaim_at:   when the student came back and asked for their turn; the
--               leader admits such tickets first at its next tick.
-- reclaimed_at: when a reclaimed turn was admitted (kept for the record and
--               for the bench's fairness report).
ALTER TABLE tickets
    ADD COLUMN skipped_at   DATETIME(3) NULL,
    ADD COLUMN reclaim_at   DATETIME(3) NULL,
    ADD COLUMN reclaimed_at DATETIME(3) NULL;

-- The leader looks for returning students every tick.
CREATE INDEX ix_tickets_round_reclaim ON tickets (round_id, reclaim_at);
