-- The seat ledger: carts, enrollments, command outcomes, waitlists, audit.

CREATE TABLE cart_items (
    student_id  INT UNSIGNED NOT NULL,
    section_id  INT UNSIGNED NOT NULL,
    added_at    DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (student_id, section_id),
    CONSTRAINT fk_cart_student FOREIGN KEY (student_id) REFERENCES students (id) ON DELETE CASCADE,
    CONSTRAINT fk_cart_section FOREIGN KEY (section_id) REFERENCES sections (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- course_id is copied from the section so that the database itself refuses
-- a second section of the same course.
CREATE TABLE enrollments (
    student_id   INT UNSIGNED NOT NULL,
    section_id   INT UNSIGNED NOT NULL,
    course_id    INT UNSIGNED NOT NULL,
    command_id   BINARY(16)   NULL,
    enrolled_at  DATETIME(3)  NOT NULL,
    PRIMARY KEY (student_id, section_id),
    UNIQUE KEY uq_enrollments_student_course (student_id, course_id),
    KEY ix_enrollments_section (section_id),
    CONSTRAINT fk_enrollments_student FOREIGN KEY (student_id) REFERENCES students (id),
    CONSTRAINT fk_enrollments_section FOREIGN KEY (section_id) REFERENCES sections (id),
    CONSTRAINT fk_enrollments_course FOREIGN KEY (course_id) REFERENCES courses (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per item of a command (a cart command has several), written in
-- the same transaction as the seat change. The primary key makes a second
-- decision of the same command impossible.
CREATE TABLE command_outcomes (
    command_id   BINARY(16)   NOT NULL,
    item         SMALLINT UNSIGNED NOT NULL,
    student_id   INT UNSIGNED NOT NULL,
    round_id     INT UNSIGNED NOT NULL,
    section_id   INT UNSIGNED NULL,
    action       VARCHAR(8)   NOT NULL,
    outcome      VARCHAR(12)  NOT NULL,
    reason       VARCHAR(32)  NULL,
    -- the admission (pass lease) the command was sent under, for budgets
    lease_id     BINARY(16)   NULL,
    issued_at    DATETIME(3)  NOT NULL,
    decided_at   DATETIME(3)  NOT NULL,
    decided_by   VARCHAR(64)  NOT NULL,
    PRIMARY KEY (command_id, item),
    KEY ix_outcomes_student (student_id, decided_at),
    KEY ix_outcomes_round (round_id, decided_at),
    KEY ix_outcomes_lease (lease_id),
    CONSTRAINT ck_outcomes_action CHECK (action IN ('enroll', 'drop')),
    CONSTRAINT ck_outcomes_outcome CHECK (outcome IN ('enrolled', 'dropped', 'waitlisted', 'rejected'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE waitlist_entries (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    section_id   INT UNSIGNED NOT NULL,
    student_id   INT UNSIGNED NOT NULL,
    round_id     INT UNSIGNED NOT NULL,
    command_id   BINARY(16)   NOT NULL,
    state        VARCHAR(10)  NOT NULL DEFAULT 'waiting',
    created_at   DATETIME(3)  NOT NULL,
    resolved_at  DATETIME(3)  NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_waitlist_section_student (section_id, student_id),
    KEY ix_waitlist_section_state (section_id, state, id),
    CONSTRAINT fk_waitlist_section FOREIGN KEY (section_id) REFERENCES sections (id),
    CONSTRAINT fk_waitlist_student FOREIGN KEY (student_id) REFERENCES students (id),
    CONSTRAINT ck_waitlist_state CHECK (state IN ('waiting', 'promoted', 'skipped', 'left'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE audit_log (
    id        BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    at        DATETIME(3)  NOT NULL,
    actor     VARCHAR(64)  NOT NULL,
    action    VARCHAR(64)  NOT NULL,
    subject   VARCHAR(128) NOT NULL,
    detail    TEXT         NOT NULL,
    PRIMARY KEY (id),
    KEY ix_audit_at (at),
    KEY ix_audit_subject (subject)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
