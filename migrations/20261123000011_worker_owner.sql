-- Which artel process (its `instance` name) runs each worker, so that process, restarted after
-- a crash, can reap the workers it left behind — and never another live process's workers.
ALTER TABLE workers ADD COLUMN owner text;
CREATE INDEX workers_owner_live_idx ON workers (owner) WHERE status <> 'stopped';
