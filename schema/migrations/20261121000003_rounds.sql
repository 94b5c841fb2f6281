-- Registration rounds (one waiting room each) and the tickets that hold
-- every student's place in the one global order.

CREATE TABLE rounds (
    id                     INT UNSIGNED NOT NULL AUTO_INCREMENT,
    term_id                INT UNSIGNED NOT NULL,
    name                   VARCHAR(100) NOT NULL,
    -- bit (y - 1) set when class year y may take part
    eligible_years_mask    TINYINT UNSIGNED NOT NULL,
    prequeue_at            DATETIME(3)  NOT NULL,
    opens_at               DATETIME(3)  NOT NULL,
    closes_at              DATETIME(3)  NOT NULL,
    state                  VARCHAR(12)  NOT NULL DEFAULT 'scheduled',
    admission_per_min      INT UNSIGNED NOT NULL DEFAULT 600,
    max_active             INT UNSIGNED NULL,
    -- every ticket with order_key <= serving_mark has been considered
    serving_mark           BIGINT UNSIGNED NOT NULL DEFAULT 0,
    shuffle_seed           BIGINT UNSIGNED NULL,
    seed_published_at      DATETIME(3)  NULL,
    updated_at             DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    KEY ix_rounds_term (term_id),
    CONSTRAINT fk_rounds_term FOREIGN KEY (term_id) REFERENCES terms (id),
    CONSTRAINT ck_rounds_state CHECK (state IN ('scheduled', 'prequeue', 'open', 'paused', 'closed')),
    CONSTRAINT ck_rounds_times CHECK (prequeue_at <= opens_at AND opens_at < closes_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- `seq` is the global sequencer. Pre-queue arrivals get their final
-- `order_key` when the round opens (the published shuffle); later arrivals
-- get order_key = offset + seq. One ticket per (round, student): a second
-- device takes over the same place.
CREATE TABLE tickets (
    seq           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    round_id      INT UNSIGNED NOT NULL,
    student_id    INT UNSIGNED NOT NULL,
    order_key     BIGINT UNSIGNED NULL,
    prequeue      BOOLEAN      NOT NULL DEFAULT FALSE,
    state         VARCHAR(10)  NOT NULL DEFAULT 'waiting',
    joined_at     DATETIME(3)  NOT NULL,
    last_seen_at  DATETIME(3)  NOT NULL,
    admitted_at   DATETIME(3)  NULL,
    lease_id      BINARY(16)   NULL,
    PRIMARY KEY (seq),
    UNIQUE KEY uq_tickets_round_student (round_id, student_id),
    KEY ix_tickets_round_order (round_id, order_key),
    CONSTRAINT fk_tickets_round FOREIGN KEY (round_id) REFERENCES rounds (id),
    CONSTRAINT fk_tickets_student FOREIGN KEY (student_id) REFERENCES students (id),
    CONSTRAINT ck_tickets_state CHECK (state IN ('waiting', 'admitted', 'skipped', 'left'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
