-- Priority inside a round: classes of students admitted in order or by
-- weight (docs/decisions/090-priority-classes.md).
--
-- rounds.priority: the declared policy as its canonical text, e.g.
--   'strict:4/1-3' (4th years first, then 1st-3rd) or 'weighted:4=2/1-3=1'
--   (two turns for 4th years to one for the others). NULL, as on every
--   existing round, means none: one line, as before.
-- round_lanes: one row per lane (class group) of a round with a policy:
--   the lane's last key handed out and its serving mark, both counted
--   inside the lane (a ticket's order_key carries its lane in the bits
--   above 2^40), and the rounding of weighted turns carried from tick to
--   tick. The round's last_order_key and serving_mark are then the sums
--   over its lanes, so everything that reads them as totals still does.
ALTER TABLE rounds
    ADD COLUMN priority VARCHAR(80) NULL;

CREATE TABLE round_lanes (
    round_id      INT UNSIGNED     NOT NULL,
    lane          TINYINT UNSIGNED NOT NULL,
    last_key      BIGINT UNSIGNED  NOT NULL DEFAULT 0,
    serving_mark  BIGINT UNSIGNED  NOT NULL DEFAULT 0,
    credit        BIGINT           NOT NULL DEFAULT 0,
    PRIMARY KEY (round_id, lane),
    CONSTRAINT fk_round_lanes_round FOREIGN KEY (round_id) REFERENCES rounds (id) ON DELETE CASCADE,
    CONSTRAINT ck_round_lanes_lane CHECK (lane < 8)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
