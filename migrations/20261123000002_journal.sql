-- The durable workflow journal (DESIGN.md rule 3): tasks, each task's steps, and the
-- append-only event log every front door reads.

-- One unit of work on a project. `status` is `artel_messages::TaskStatus`, `kind` is
-- `artel_messages::TaskKind`. A failed task keeps its failure (class + reason) until retried.
CREATE TABLE tasks (
    id             uuid PRIMARY KEY,
    project_id     uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    session_id     uuid REFERENCES sessions (id) ON DELETE SET NULL,
    kind           text NOT NULL CHECK (kind IN ('engineering', 'deploy')),
    status         text NOT NULL DEFAULT 'queued'
                   CHECK (status IN ('queued', 'running', 'needs_human', 'completed', 'failed',
                                     'cancelled')),
    description    text NOT NULL DEFAULT '',
    -- What the user said when retrying a stuck or failed task.
    guidance       text,
    -- How many times a workflow has started running this task.
    attempts       integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    error_class    text CHECK (error_class IN ('retryable', 'fatal')),
    error_reason   text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tasks_error_whole CHECK ((error_class IS NULL) = (error_reason IS NULL))
);
CREATE INDEX tasks_project_id_idx ON tasks (project_id, created_at);
CREATE INDEX tasks_session_id_idx ON tasks (session_id);
CREATE INDEX tasks_status_idx ON tasks (status);
CREATE INDEX tasks_updated_at_idx ON tasks (updated_at);

-- One attempt at one step of a task. Written before the step runs and again after it, so a
-- restarted workflow resumes at the first unfinished step and never redoes a finished one.
-- `idempotency_key` is chosen by the workflow: beginning a step twice with the same key
-- returns the one row. `step` is `artel_messages::StepKind`, `status` is `StepStatus`.
CREATE TABLE task_steps (
    id              bigserial PRIMARY KEY,
    task_id         uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    step            text NOT NULL
                    CHECK (step IN ('scaffold', 'develop', 'test', 'analyze_env',
                                    'resolve_secrets', 'deploy', 'health_check')),
    attempt         integer NOT NULL CHECK (attempt >= 1),
    status          text NOT NULL
                    CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
    idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    input           jsonb NOT NULL DEFAULT '{}'::jsonb,
    output          jsonb,
    error_class     text CHECK (error_class IN ('retryable', 'fatal')),
    error_reason    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    CONSTRAINT task_steps_idempotency_key_key UNIQUE (idempotency_key),
    -- Also the index for task_id (its leading column): `steps(task)` reads by it.
    CONSTRAINT task_steps_task_step_attempt_key UNIQUE (task_id, step, attempt),
    CONSTRAINT task_steps_error_whole CHECK ((error_class IS NULL) = (error_reason IS NULL)),
    CONSTRAINT task_steps_finished_when_terminal
        CHECK ((status IN ('succeeded', 'failed')) = (finished_at IS NOT NULL)),
    CONSTRAINT task_steps_output_only_when_succeeded
        CHECK (output IS NULL OR status = 'succeeded'),
    CONSTRAINT task_steps_error_only_when_failed
        CHECK (error_class IS NULL OR status = 'failed')
);
CREATE INDEX task_steps_task_id_idx ON task_steps (task_id, id);
CREATE INDEX task_steps_unfinished_idx ON task_steps (task_id)
    WHERE status IN ('pending', 'running');

-- The append-only progress journal: `kind` names an `artel_messages::EventBody` variant and
-- `payload` holds its fields. Ids grow in commit order (the store serializes appends), so a
-- subscriber resumes with "everything after id N" and misses nothing.
CREATE TABLE events (
    id         bigserial PRIMARY KEY,
    project_id uuid REFERENCES projects (id) ON DELETE CASCADE,
    task_id    uuid REFERENCES tasks (id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,63}$'),
    payload    jsonb NOT NULL,
    at         timestamptz NOT NULL
);
CREATE INDEX events_project_id_id_idx ON events (project_id, id);
CREATE INDEX events_task_id_id_idx ON events (task_id, id);
CREATE INDEX events_at_idx ON events (at);

-- Append-only means append-only: an event is never rewritten. (Deleting is allowed, for
-- retention and for removing a project with everything it owns.)
CREATE FUNCTION events_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: event % cannot be updated', OLD.id
        USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_update();
