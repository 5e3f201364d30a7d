-- Dead letters keyed by the refused message (SHA-256 of reason, topic and payload), so a
-- redelivered message that was already dead-lettered is not stored twice. Rows from before this
-- migration, and rows written without a key, have NULL, which the unique index allows many times.
ALTER TABLE dead_letters ADD COLUMN message_key BYTEA;
CREATE UNIQUE INDEX dead_letters_key ON dead_letters (message_key);
