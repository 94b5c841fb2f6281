-- Automatic pace: the admission leader sets `admission_per_min` itself,
-- within the registrar's floor and ceiling, from the command backlog and
-- the decision latency.
--
-- pace_mode:               'fixed' (the registrar's rate) or 'auto'.
-- pace_floor/ceiling:      admissions per minute the leader stays within.
-- pace_target_latency_ms:  decision latency (issued to decided) to hold.
-- pace_target_backlog:     commands waiting in RabbitMQ to hold.
-- pace_reason/signal:      why the rate is where it is (backlog, latency,
--                          healthy, steady, unknown) and the value measured.
-- pace_changed_at:         when the leader last changed the rate.
ALTER TABLE rounds
    ADD COLUMN pace_mode              VARCHAR(8)      NOT NULL DEFAULT 'fixed',
    ADD COLUMN pace_floor             INT UNSIGNED    NULL,
    ADD COLUMN pace_ceiling           INT UNSIGNED    NULL,
    ADD COLUMN pace_target_latency_ms INT UNSIGNED    NULL,
    ADD COLUMN pace_target_backlog    INT UNSIGNED    NULL,
    ADD COLUMN pace_reason            VARCHAR(16)     NULL,
    ADD COLUMN pace_signal            BIGINT UNSIGNED NULL,
    ADD COLUMN pace_changed_at        DATETIME(3)     NULL,
    ADD CONSTRAINT ck_rounds_pace_mode CHECK (pace_mode IN ('fixed', 'auto'));
