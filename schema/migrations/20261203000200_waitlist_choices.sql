-- A waitlist students choose, see and leave.
--
-- `cart_items.waitlist`: the student's choice for the item, "join the
-- waitlist if full"; the gateway sends it as the item's `waitlist` option.
-- `leave_waitlist` is a command action of its own, decided under the
-- section lock: `left_waitlist` when the student was waiting (the entry
-- becomes `left`, `resolved_by` the command), else `rejected` with
-- `not_waitlisted`. Both names are longer than the old columns allowed.
-- The index on (state, section_id) lets the worker find, cheaply, the
-- sections whose line waits behind a free seat (a capacity raised, a
-- section reopened) and fill them without any student acting.

ALTER TABLE cart_items ADD COLUMN waitlist BOOLEAN NOT NULL DEFAULT FALSE AFTER section_id;

ALTER TABLE command_outcomes MODIFY action VARCHAR(16) NOT NULL, MODIFY outcome VARCHAR(16) NOT NULL;
ALTER TABLE command_outcomes DROP CONSTRAINT ck_outcomes_action;
ALTER TABLE command_outcomes ADD CONSTRAINT ck_outcomes_action
    CHECK (action IN ('enroll', 'drop', 'swap', 'leave_waitlist'));
ALTER TABLE command_outcomes DROP CONSTRAINT ck_outcomes_outcome;
ALTER TABLE command_outcomes ADD CONSTRAINT ck_outcomes_outcome
    CHECK (outcome IN ('enrolled', 'dropped', 'waitlisted', 'promoted', 'left_waitlist', 'rejected', 'failed'));

ALTER TABLE waitlist_entries ADD KEY ix_waitlist_state_section (state, section_id);
