-- A swap (enroll in one section and give up another in one decision)
-- records its two items under the action 'swap': item 0 the section
-- gained, item 1 the section given up.
ALTER TABLE command_outcomes DROP CONSTRAINT ck_outcomes_action;
ALTER TABLE command_outcomes
    ADD CONSTRAINT ck_outcomes_action CHECK (action IN ('enroll', 'drop', 'swap'));
