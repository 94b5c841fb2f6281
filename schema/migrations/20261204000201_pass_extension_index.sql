-- The leader counts running passes every tick. The extension a pass was
-- given (pass_extra_ms) takes part in that count, so it joins the index the
-- count reads: the count stays an index range read, with no row looked up
-- per running pass.
ALTER TABLE tickets
    DROP INDEX ix_tickets_round_state_admitted,
    ADD INDEX ix_tickets_round_state_admitted (round_id, state, admitted_at, pass_extra_ms);
