-- When the admission rate was last lowered (by a registrar, or by the
-- automatic pace): every gateway explains a lowered rate on the queue page
-- for a while after it, from this one time, so that a gateway started
-- after the change says the same as those that saw it happen.
ALTER TABLE rounds
    ADD COLUMN rate_lowered_at DATETIME(3) NULL;
