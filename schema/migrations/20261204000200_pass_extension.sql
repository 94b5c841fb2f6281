-- Passes given back the time an outage took from them.
--
-- tickets.pass_extra_ms: added to this admission's pass lifetime because
--   admission was held or could not run (RabbitMQ down, MySQL unreachable)
--   while the pass was alive; the pass ends at admitted_at + the configured
--   lifetime + this.
-- rounds.pass_clock_at: the last time the leader found admission running
--   in the round (written at most about once a second). A tick that finds
--   it long past gives the gap to every pass alive at it, then moves it on.
--   NULL after a change of state, so a registrar's pause is not a gap.
-- rounds.pass_extended_ms: every extension given in the round, added up: no
--   ticket's pass_extra_ms is larger, which bounds the index range the
--   leader reads when it counts running passes.
ALTER TABLE tickets
    ADD COLUMN pass_extra_ms INT UNSIGNED NOT NULL DEFAULT 0;
ALTER TABLE rounds
    ADD COLUMN pass_clock_at    DATETIME(3)     NULL,
    ADD COLUMN pass_extended_ms BIGINT UNSIGNED NOT NULL DEFAULT 0;
