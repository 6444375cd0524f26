-- What artel runs things on: workers (sandboxes), servers (deploy targets), deployments, and
-- allocations of scarce resources (ports, bot accounts) to them.

-- One sandbox. `runtime` is `artel_messages::worker_manager::WorkerRuntime`, `status` the one
-- worker lifecycle `artel_messages::WorkerStatus`; the limits are `WorkerLimits`' fields.
CREATE TABLE workers (
    id                      uuid PRIMARY KEY,
    project_id              uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    task_id                 uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    runtime                 text NOT NULL CHECK (runtime IN ('process', 'docker')),
    status                  text NOT NULL DEFAULT 'started'
                            CHECK (status IN ('started', 'ready', 'busy', 'completed', 'failed',
                                              'stopped')),
    image                   text,
    -- The container id or process group id, once known.
    handle                  text,
    cpu_seconds             bigint NOT NULL CHECK (cpu_seconds >= 0),
    memory_bytes            bigint NOT NULL CHECK (memory_bytes >= 0),
    pids                    integer NOT NULL CHECK (pids >= 0),
    file_size_bytes         bigint NOT NULL CHECK (file_size_bytes >= 0),
    wall_clock_timeout_secs bigint NOT NULL CHECK (wall_clock_timeout_secs >= 0),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workers_project_id_idx ON workers (project_id);
CREATE INDEX workers_task_id_idx ON workers (task_id);
CREATE INDEX workers_live_idx ON workers (status) WHERE status <> 'stopped';
CREATE INDEX workers_updated_at_idx ON workers (updated_at);

-- A deploy target known to the operator: the local machine, a Docker host, an SSH host.
-- Shaped after `artel_messages::deployer::DeployTarget`.
CREATE TABLE servers (
    id              uuid PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    kind            text NOT NULL CHECK (kind IN ('local', 'docker', 'ssh')),
    host            text,
    ssh_user        text,
    health          text NOT NULL DEFAULT 'unknown'
                    CHECK (health IN ('unknown', 'healthy', 'unreachable')),
    last_checked_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT servers_ssh_has_host
        CHECK (kind <> 'ssh' OR (host IS NOT NULL AND ssh_user IS NOT NULL))
);

-- One attempt to run a commit of a project on a target; `status` is
-- `artel_messages::DeploymentStatus`. At most one deployment per project is live.
CREATE TABLE deployments (
    id          uuid PRIMARY KEY,
    project_id  uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    task_id     uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    server_id   uuid REFERENCES servers (id) ON DELETE RESTRICT,
    commit_sha  text NOT NULL CHECK (commit_sha ~ '^[0-9a-f]{7,64}$'),
    status      text NOT NULL DEFAULT 'deploying'
                CHECK (status IN ('deploying', 'live', 'failed', 'rolled_back', 'superseded')),
    url         text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deployments_project_id_idx ON deployments (project_id, created_at);
CREATE INDEX deployments_task_id_idx ON deployments (task_id);
CREATE INDEX deployments_server_id_idx ON deployments (server_id);
CREATE UNIQUE INDEX deployments_one_live_per_project
    ON deployments (project_id) WHERE status = 'live';

-- A scarce resource held by a project: a TCP port on a server (the local machine when
-- server_id is null) or a bot account. Released rows are kept for the record.
CREATE TABLE allocations (
    id            bigserial PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('port', 'bot')),
    project_id    uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    deployment_id uuid REFERENCES deployments (id) ON DELETE SET NULL,
    server_id     uuid REFERENCES servers (id) ON DELETE CASCADE,
    port          integer CHECK (port BETWEEN 1 AND 65535),
    bot_username  text,
    allocated_at  timestamptz NOT NULL DEFAULT now(),
    released_at   timestamptz,
    CONSTRAINT allocations_shape CHECK (
        (kind = 'port' AND port IS NOT NULL AND bot_username IS NULL)
        OR (kind = 'bot' AND bot_username IS NOT NULL AND port IS NULL))
);
CREATE INDEX allocations_project_id_idx ON allocations (project_id);
CREATE INDEX allocations_deployment_id_idx ON allocations (deployment_id);
CREATE INDEX allocations_server_id_idx ON allocations (server_id);
CREATE UNIQUE INDEX allocations_port_held_once
    ON allocations (coalesce(server_id, '00000000-0000-0000-0000-000000000000'::uuid), port)
    WHERE kind = 'port' AND released_at IS NULL;
CREATE UNIQUE INDEX allocations_bot_held_once
    ON allocations (bot_username) WHERE kind = 'bot' AND released_at IS NULL;
