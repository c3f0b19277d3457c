-- R20: display names are unique under Unicode confusable matching. Each live account keeps the
-- UTS #39 skeleton of its display name (countersign_core::lookalike::skeleton) under a unique
-- index, so racing changes on several replicas cannot both take a name, and the skeleton of its
-- username, which a display name may not look like either.
--
-- Both are computed in Rust: the store fills them in for existing accounts when it opens
-- (`Store::backfill_name_skeletons`), oldest account first. An existing account whose display
-- name is too like an older account's name, or holds a character a screen hides, keeps a NULL
-- skeleton and says why in display_name_flag; its next change must give it a name that passes.
ALTER TABLE accounts ADD COLUMN display_name_skeleton TEXT;
ALTER TABLE accounts ADD COLUMN username_skeleton TEXT;
ALTER TABLE accounts ADD COLUMN display_name_flag TEXT;
CREATE UNIQUE INDEX accounts_display_name_skeleton ON accounts (display_name_skeleton) WHERE deleted_at IS NULL;
CREATE INDEX accounts_username_skeleton ON accounts (username_skeleton) WHERE deleted_at IS NULL;
