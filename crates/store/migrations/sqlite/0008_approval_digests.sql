-- R12: each decision records the changeDigest it was given on (hex SHA-256 of the change, see
-- core::diff::Change::digest). Completion applies only a change whose digest every counted
-- approval recorded; an approval from before this migration recorded none, so a request
-- approved then and not yet completed fails at completion and is submitted again.
ALTER TABLE approvals ADD COLUMN change_digest TEXT;
