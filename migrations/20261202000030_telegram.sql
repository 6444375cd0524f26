-- The Telegram front door (issue 16): what lets a Telegram chat outlive the process that
-- serves it. Every row here is written before the effect it stands for, so a crash at any
-- point repeats nothing the user would see twice and loses nothing they sent.

-- A user line may name where it came from (a Telegram update): the same update handled again
-- after a crash finds its line journaled already and says nothing twice.
ALTER TABLE session_messages ADD COLUMN source_key text;
CREATE UNIQUE INDEX session_messages_source_key_key
    ON session_messages (session_id, source_key) WHERE source_key IS NOT NULL;

-- Each update received by getUpdates (or a webhook), journaled before the offset moves past
-- it; `handled_at` is set once its effect is committed. Replayed in update_id order.
CREATE TABLE telegram_updates (
    bot_id      bigint NOT NULL,
    update_id   bigint NOT NULL,
    payload     jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    handled_at  timestamptz,
    PRIMARY KEY (bot_id, update_id)
);
CREATE INDEX telegram_updates_unhandled_idx
    ON telegram_updates (bot_id, update_id) WHERE handled_at IS NULL;

-- One Telegram chat ↔ one artel user and their telegram session. `delivered_line` is the
-- gateway's cursor in the session's transcript: ProductOwner lines after it are still to send.
CREATE TABLE telegram_chats (
    bot_id         bigint NOT NULL,
    chat_id        bigint NOT NULL,
    private        boolean NOT NULL,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id     uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    delivered_line bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bot_id, chat_id)
);
CREATE INDEX telegram_chats_user_id_idx ON telegram_chats (user_id);
CREATE INDEX telegram_chats_session_id_idx ON telegram_chats (session_id);

-- One-time codes for `/start <code>`: only their SHA-256 is kept.
CREATE TABLE telegram_link_codes (
    code_sha256 bytea PRIMARY KEY CHECK (length(code_sha256) = 32),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX telegram_link_codes_user_id_idx ON telegram_link_codes (user_id);

-- A question shown with an inline keyboard: its nonce travels in callback_data. Answered
-- once; a press after that (or after the task moved on) is told the question has expired.
CREATE TABLE telegram_questions (
    nonce       text PRIMARY KEY CHECK (length(nonce) BETWEEN 8 AND 32),
    bot_id      bigint NOT NULL,
    chat_id     bigint NOT NULL,
    line_id     bigint NOT NULL UNIQUE REFERENCES session_messages (id) ON DELETE CASCADE,
    task_id     uuid REFERENCES tasks (id) ON DELETE CASCADE,
    text        text NOT NULL,
    message_id  bigint,
    answer      text,
    answered_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX telegram_questions_chat_idx ON telegram_questions (bot_id, chat_id);
CREATE INDEX telegram_questions_task_id_idx ON telegram_questions (task_id);

-- The one status message per task, edited in place as its steps advance.
CREATE TABLE telegram_status_messages (
    task_id    uuid PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
    bot_id     bigint NOT NULL,
    chat_id    bigint NOT NULL,
    message_id bigint NOT NULL,
    text       text NOT NULL,
    final      boolean NOT NULL DEFAULT false,
    edited_at  timestamptz NOT NULL DEFAULT now()
);

-- Who polls a bot token: one process at a time (Telegram answers a second poller with 409).
-- A lease with an expiry, renewed by its holder; an expired lease is anyone's.
CREATE TABLE telegram_pollers (
    bot_id     bigint PRIMARY KEY,
    owner      text NOT NULL,
    expires_at timestamptz NOT NULL
);
