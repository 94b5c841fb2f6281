-- Waiting-room state kept next to each round, so every gateway can refresh
-- its snapshot of a round with one small read.
--
-- last_order_key: the highest order key handed out; joins after opening take
--   the next ones under the round row lock, so keys are dense per round and
--   follow the global ticket sequence.
-- admitted_total / active_count: written by the admission leader each tick.
-- hold_reason: set while admission is held because a dependency is down
--   (fail closed); NULL when admitting normally.
-- cohort_size: how many pre-queue tickets were shuffled at opening.

ALTER TABLE rounds
    ADD COLUMN last_order_key BIGINT UNSIGNED NOT NULL DEFAULT 0,
    ADD COLUMN admitted_total BIGINT UNSIGNED NOT NULL DEFAULT 0,
    ADD COLUMN active_count   INT UNSIGNED    NOT NULL DEFAULT 0,
    ADD COLUMN hold_reason    VARCHAR(16)     NULL,
    ADD COLUMN cohort_size    INT UNSIGNED    NOT NULL DEFAULT 0;

-- The leader counts running admissions for the max-active cap every tick.
CREATE INDEX ix_tickets_round_state_admitted ON tickets (round_id, state, admitted_at);
