-- Failed sign-ins per account, so every gateway applies one throttle: after
-- a few wrong passwords for an account, each further attempt waits longer.
-- Keyed by the name as typed (student number or admin username), whether
-- or not such an account exists, so the throttle reveals nothing about
-- which accounts exist. Rows idle for a day are swept by the gateways.

CREATE TABLE sign_in_failures (
    account_kind     VARCHAR(8)      NOT NULL,
    account          VARCHAR(64)     NOT NULL,
    failures         INT UNSIGNED    NOT NULL,
    last_failed_ms   BIGINT UNSIGNED NOT NULL,
    locked_until_ms  BIGINT UNSIGNED NOT NULL DEFAULT 0,
    PRIMARY KEY (account_kind, account),
    KEY ix_sign_in_failures_last (last_failed_ms),
    CONSTRAINT ck_sign_in_failures_kind CHECK (account_kind IN ('student', 'admin'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
