-- What the engineering and deploy workflows need beyond the journal of 02:
--
-- * `journal_mark`: the journal id at the moment a user retried the task (from `failed` or
--   `needs_human`). Budgets — attempts of a step, iterations of the Developer ⇄ Tester rework
--   loop, "this round already asked for a secret" — count only journal rows after it, so a
--   retry gets a fresh budget while every finished step stays finished.
-- * `follow_up`: the id of the deploy task to create when this engineering task completes
--   (a user asked for a running service, not only for code). Chosen when the engineering task
--   is created, so the follow-up is created exactly once even if artel dies at completion.

ALTER TABLE tasks
    ADD COLUMN journal_mark bigint NOT NULL DEFAULT 0 CHECK (journal_mark >= 0),
    ADD COLUMN follow_up    uuid UNIQUE;
