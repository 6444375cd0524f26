-- What the local deploy target (`artel_actors::deploy_target::LocalTarget`) records about a
-- deployment beyond the attempt itself (migration 03): enough to start the service again
-- after artel restarts, and to clean up after a crash. Secret *values* are never stored
-- here: `env_names` lists the project's secrets to inject, read from `secrets` at each start.

ALTER TABLE deployments
    -- The TCP port on 127.0.0.1 it listens on (also held in `allocations` while in use).
    ADD COLUMN port        integer CHECK (port BETWEEN 1 AND 65535),
    -- The directory holding the exported code; the service starts there.
    ADD COLUMN workdir     text,
    -- The program and its arguments, as a JSON array of strings.
    ADD COLUMN command     jsonb CHECK (jsonb_typeof(command) = 'array'),
    -- The names of the project's secrets set in its environment.
    ADD COLUMN env_names   text[] NOT NULL DEFAULT '{}',
    -- The path answering the health check (`GET url + health_path` must be 2xx).
    ADD COLUMN health_path text NOT NULL DEFAULT '/' CHECK (health_path LIKE '/%'),
    -- The process group leader while it runs: killed on the next start if artel crashed.
    ADD COLUMN pid         integer CHECK (pid > 0),
    -- Why it failed or was rolled back.
    ADD COLUMN failure     text;
