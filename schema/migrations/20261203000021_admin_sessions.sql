-- Admin sessions are signed cookies, checked against these columns on use
-- (cached for a few seconds): a disabled admin's sessions stop working, and
-- signing out makes every session issued before that instant invalid.

ALTER TABLE admins
    ADD COLUMN disabled_at DATETIME(3) NULL,
    ADD COLUMN sessions_valid_after_ms BIGINT UNSIGNED NOT NULL DEFAULT 0;
