-- Who uses artel and how they get in: users, their API keys, their projects, their chat
-- sessions and the sessions' transcripts.
--
-- Conventions for every migration in this folder:
-- * ids are UUIDs chosen by the application (version 7, ordered by creation time), except
--   append-only journals, which use a bigint sequence so readers resume "after id N";
-- * every time is `timestamptz` (never naive);
-- * statuses and kinds are text with a CHECK listing exactly the `as_str` names of the
--   matching `artel_messages` enum, so the database and the code cannot disagree silently;
-- * every foreign key has an index (or is the leading column of a unique index);
-- * no state blob: jsonb only for step inputs/outputs and event payloads, which are typed in
--   the message catalog.

CREATE TABLE users (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    email       text UNIQUE,
    telegram_id bigint UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- An API key is shown to its user once; artel keeps only its SHA-256 and a short prefix that
-- lets a user recognize it in a listing. A leaked database leaks no usable key.
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label        text NOT NULL DEFAULT '',
    prefix       text NOT NULL CHECK (length(prefix) BETWEEN 4 AND 16),
    key_sha256   bytea NOT NULL UNIQUE CHECK (length(key_sha256) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_user_id_idx ON api_keys (user_id);

CREATE TABLE projects (
    id          uuid PRIMARY KEY,
    owner_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    description text NOT NULL DEFAULT '',
    repo_url    text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- Also the index for owner_id (its leading column).
    CONSTRAINT projects_owner_name_key UNIQUE (owner_id, name)
);

-- One conversation with the ProductOwner: a Telegram chat, the dashboard chat, a CLI `new`.
CREATE TABLE sessions (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id   uuid REFERENCES projects (id) ON DELETE SET NULL,
    channel      text NOT NULL CHECK (channel IN ('telegram', 'dashboard', 'cli')),
    -- The channel's own handle for the conversation, e.g. the Telegram chat id.
    external_ref text,
    status       text NOT NULL DEFAULT 'active'
                 CHECK (status IN ('active', 'hibernated', 'closed')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_project_id_idx ON sessions (project_id);
CREATE INDEX sessions_last_seen_at_idx ON sessions (last_seen_at);
CREATE UNIQUE INDEX sessions_channel_external_ref_key
    ON sessions (channel, external_ref) WHERE external_ref IS NOT NULL AND status <> 'closed';

-- The transcript: one row per line said. Roles are `artel_messages::event::ChatRole`.
CREATE TABLE session_messages (
    id         bigserial PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('user', 'product_owner')),
    text       text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX session_messages_session_id_id_idx ON session_messages (session_id, id);
