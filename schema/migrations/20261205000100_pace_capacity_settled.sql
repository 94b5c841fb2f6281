-- Whether the workers' measured speed has settled, for the estimates of the
-- automatic pace (decision 095). The first window of a round is measured in
-- the first seconds of its surge, while seats are being taken and the
-- workers are slowest; waits estimated with it ran about twice too long.
--
-- pace_capacity_settled:  a window agreed with the speed measured before it
--                         (within 20 %), the workers were seen keeping up
--                         with it, or it was carried from a round where it
--                         had settled. Until then waits are estimated as if
--                         nothing were measured; the controller uses every
--                         measurement. Rows measured before this column are
--                         taken as settled, as they were used; a speed
--                         written by a gateway that does not know the
--                         column (a rolling deploy) is not.
ALTER TABLE rounds
    ADD COLUMN pace_capacity_settled BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE rounds SET pace_capacity_settled = TRUE WHERE pace_capacity_per_min IS NOT NULL;
