-- Rehearsals: a round a registrar marks as a rehearsal may be the target of
-- a rehearsal run (the bench's surge against a deployment); any other round
-- is refused by the gateway when the run registers. Each run is recorded
-- with its bounds and, once it finished, its report for the ops page.
ALTER TABLE rounds ADD COLUMN rehearsal BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE rehearsal_runs (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    round_id     INT UNSIGNED    NOT NULL,
    -- the admin whose credentials registered the run
    actor        VARCHAR(64)     NOT NULL,
    students     INT UNSIGNED    NOT NULL,
    duration_s   INT UNSIGNED    NOT NULL,
    started_at   DATETIME(3)     NOT NULL,
    finished_at  DATETIME(3)     NULL,
    -- key results as JSON (admitted, accepted commands, p99s, 5xx, ...)
    summary      TEXT            NULL,
    -- the bench's report as JSON, without its timeline
    report       MEDIUMTEXT      NULL,
    PRIMARY KEY (id),
    KEY ix_rehearsal_runs_round (round_id),
    CONSTRAINT fk_rehearsal_runs_round FOREIGN KEY (round_id) REFERENCES rounds (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
