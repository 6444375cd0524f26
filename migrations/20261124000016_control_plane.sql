-- The control plane: roles for users (what their API keys may do).
--
-- `operator` sees and may do everything (the supervision tree, every user's work); `user` sees
-- only their own. Existing users (the command line's own user among them) are users.
ALTER TABLE users
    ADD COLUMN role text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'operator'));

-- Keys are looked up by hash on every request (unique index already) and listed per user;
-- a listing shows live keys first.
CREATE INDEX api_keys_user_live_idx ON api_keys (user_id, created_at) WHERE revoked_at IS NULL;

-- A deploy task may be pinned to a commit (an operator's rollback to an earlier good
-- deployment); without a pin a deploy task deploys the head of `main`.
ALTER TABLE tasks
    ADD COLUMN commit_pin text CHECK (commit_pin ~ '^[0-9a-f]{7,64}$');
