-- Every call to an LLM provider, for cost accounting and the tokens/cost metrics. Cost is in
-- millionths of a US dollar (an integer: no float rounding, no numeric type in the client).
CREATE TABLE llm_requests (
    id             bigserial PRIMARY KEY,
    project_id     uuid REFERENCES projects (id) ON DELETE SET NULL,
    task_id        uuid REFERENCES tasks (id) ON DELETE SET NULL,
    session_id     uuid REFERENCES sessions (id) ON DELETE SET NULL,
    provider       text NOT NULL,
    model          text NOT NULL,
    tokens_in      integer NOT NULL DEFAULT 0 CHECK (tokens_in >= 0),
    tokens_out     integer NOT NULL DEFAULT 0 CHECK (tokens_out >= 0),
    cost_micro_usd bigint NOT NULL DEFAULT 0 CHECK (cost_micro_usd >= 0),
    latency_ms     integer NOT NULL CHECK (latency_ms >= 0),
    status         text NOT NULL
                   CHECK (status IN ('ok', 'error', 'timeout', 'rate_limited', 'cancelled')),
    error          text,
    at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX llm_requests_project_id_at_idx ON llm_requests (project_id, at);
CREATE INDEX llm_requests_task_id_idx ON llm_requests (task_id);
CREATE INDEX llm_requests_session_id_idx ON llm_requests (session_id);
CREATE INDEX llm_requests_at_idx ON llm_requests (at);
