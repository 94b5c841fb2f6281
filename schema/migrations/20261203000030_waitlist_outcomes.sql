-- Outcomes for waitlist promotions and for commands that could not be
-- decided, and the link from a resolved waitlist entry to its outcome.
--
-- `promoted`: a waiting student took a freed seat; the row has a command id
-- of its own (the entry's command already has its `waitlisted` outcome).
-- `failed`: the worker could not decide the command (reason `not_processed`);
-- nothing changed, and the student may send it again.

ALTER TABLE command_outcomes DROP CONSTRAINT ck_outcomes_outcome;
ALTER TABLE command_outcomes ADD CONSTRAINT ck_outcomes_outcome
    CHECK (outcome IN ('enrolled', 'dropped', 'waitlisted', 'promoted', 'rejected', 'failed'));

-- The command id of the outcome row that records how the entry was resolved.
ALTER TABLE waitlist_entries ADD COLUMN resolved_by BINARY(16) NULL AFTER resolved_at;
