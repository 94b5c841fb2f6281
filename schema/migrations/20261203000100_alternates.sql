-- Alternates: a cart item may name other sections of the same course to
-- try, in order, when its first choice is refused.
--
-- `cart_items.alternates`: the alternates' section ids, comma-separated, in
-- the order they are tried (at most four; the gateway checks each names a
-- section of the item's course). Empty: none.
-- `command_outcomes.choice`: which of the item's choices the outcome's
-- section is: 0 the first, k its k-th alternate.

ALTER TABLE cart_items ADD COLUMN alternates VARCHAR(64) NOT NULL DEFAULT '' AFTER section_id;
ALTER TABLE command_outcomes ADD COLUMN choice TINYINT UNSIGNED NOT NULL DEFAULT 0 AFTER item;
