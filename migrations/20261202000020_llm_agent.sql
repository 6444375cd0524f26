-- The built-in LLM agent: who asked each model call (role) and what the cache served; the
-- agent's conversation journal (one row per turn, so a restarted Developer resumes without
-- paying again for journaled turns); budget raises the user approved per task.
ALTER TABLE llm_requests
    ADD COLUMN role          text NOT NULL DEFAULT '',
    ADD COLUMN tokens_cached integer NOT NULL DEFAULT 0 CHECK (tokens_cached >= 0);
CREATE INDEX llm_requests_role_idx ON llm_requests (role);

CREATE TABLE agent_turns (
    task_id  uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    seq      integer NOT NULL CHECK (seq >= 0),
    message  jsonb NOT NULL,
    at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, seq)
);

CREATE TABLE task_budgets (
    task_id         uuid PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
    extra_micro_usd bigint NOT NULL DEFAULT 0 CHECK (extra_micro_usd >= 0),
    extra_turns     integer NOT NULL DEFAULT 0 CHECK (extra_turns >= 0)
);
