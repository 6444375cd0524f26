-- The pool of Telegram bots for generated services (issue 16): an operator registers bots;
-- a deploy whose manifest needs TELEGRAM_BOT_TOKEN takes a free one, and it is free again when
-- the project is deleted. Tokens are encrypted like project secrets (never stored plain).
CREATE TABLE telegram_bots (
    bot_id       bigint PRIMARY KEY,
    username     text NOT NULL DEFAULT '',
    key_id       text NOT NULL,
    nonce        bytea NOT NULL,
    ciphertext   bytea NOT NULL,
    project_id   uuid REFERENCES projects (id) ON DELETE SET NULL,
    allocated_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX telegram_bots_project_id_idx ON telegram_bots (project_id);
