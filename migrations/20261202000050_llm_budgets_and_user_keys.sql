-- Budgets beyond one task, and provider keys users bring themselves.
--
-- A project's model spending is capped by `llm.project_budget_usd` plus what its owner
-- approved on top (`project_budgets`); a user's spending per UTC day by
-- `llm.user_daily_budget_usd` plus what they approved for that day (`user_day_budgets`).
-- A user may store their own provider key (`user_llm_keys`), sealed like a secret; their
-- projects' model calls use it, and the system key otherwise.
CREATE TABLE project_budgets (
    project_id      uuid PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    extra_micro_usd bigint NOT NULL DEFAULT 0 CHECK (extra_micro_usd >= 0)
);

CREATE TABLE user_day_budgets (
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    day             date NOT NULL,
    extra_micro_usd bigint NOT NULL DEFAULT 0 CHECK (extra_micro_usd >= 0),
    PRIMARY KEY (user_id, day)
);

CREATE TABLE user_llm_keys (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider   text NOT NULL CHECK (provider IN ('openai', 'anthropic')),
    key_id     text NOT NULL CHECK (key_id ~ '^[0-9a-f]{16}$'),
    nonce      bytea NOT NULL CHECK (length(nonce) = 24),
    ciphertext bytea NOT NULL CHECK (length(ciphertext) >= 16),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, provider)
);

-- The per-user daily sum reads a user's projects' calls of one day.
CREATE INDEX llm_requests_at_project_idx ON llm_requests (at, project_id);
