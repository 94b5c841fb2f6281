-- "Send my cart when I am admitted": a student's opt-in while waiting, and
-- what became of it. The command id is derived from the admission (pass
-- lease) and the student, the same on every gateway, so however many
-- senders try (the admitting leader, a poll, a retry after an outage) the
-- worker decides one command.
--
-- state: waiting (opted in, not sent yet), sent (confirmed by the broker,
--   command_id set), empty (nothing in the cart to send), expired (the
--   admission ended before it could be sent).
CREATE TABLE auto_sends (
    round_id    INT UNSIGNED NOT NULL,
    student_id  INT UNSIGNED NOT NULL,
    state       VARCHAR(8)   NOT NULL DEFAULT 'waiting',
    opted_at    DATETIME(3)  NOT NULL,
    command_id  BINARY(16)   NULL,
    sent_at     DATETIME(3)  NULL,
    PRIMARY KEY (round_id, student_id),
    KEY ix_auto_sends_state (state, round_id),
    CONSTRAINT fk_auto_sends_round FOREIGN KEY (round_id) REFERENCES rounds (id),
    CONSTRAINT fk_auto_sends_student FOREIGN KEY (student_id) REFERENCES students (id) ON DELETE CASCADE,
    CONSTRAINT ck_auto_sends_state CHECK (state IN ('waiting', 'sent', 'empty', 'expired'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
