-- What the worker-manager's local-process runtime records about a worker beyond the sandbox
-- itself (migration 03): where its workspace is, which unprivileged uid its processes run as,
-- why it failed, and why it was stopped. `handle` (03) holds the process group id while a
-- command runs.

ALTER TABLE workers
    -- The worker's own directory on the artel host (process runtime); null for containers.
    ADD COLUMN workspace    text,
    -- The uid its processes run as, when artel runs as root and drops privileges for it.
    ADD COLUMN run_as_uid   bigint CHECK (run_as_uid >= 0),
    -- Why it failed, while failed (or stopped after failing); the class is
    -- `artel_messages::ErrorClass`.
    ADD COLUMN error_class  text CHECK (error_class IN ('retryable', 'fatal')),
    ADD COLUMN error_reason text,
    -- Why it was stopped (`StopWorker::reason`).
    ADD COLUMN stop_reason  text,
    ADD CONSTRAINT workers_error_is_whole
        CHECK ((error_class IS NULL) = (error_reason IS NULL));
