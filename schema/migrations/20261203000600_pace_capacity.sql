-- The workers' measured speed, for the automatic pace: admissions a minute
-- they kept up with while commands stayed queued (students whose commands
-- were decided, a minute), smoothed over the leader's busy windows.
--
-- pace_capacity_per_min:  the measurement; estimates in automatic mode use
--                         it, and a round switched to automatic starts at
--                         the latest one measured in any round.
-- pace_capacity_at:       when it was last measured.
ALTER TABLE rounds
    ADD COLUMN pace_capacity_per_min INT UNSIGNED NULL,
    ADD COLUMN pace_capacity_at      DATETIME(3)  NULL;
