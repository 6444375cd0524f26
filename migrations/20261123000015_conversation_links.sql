-- What lets a session answer every line exactly once and tell every piece of news once,
-- across crashes and hibernation:
--
-- * `reply_to`: the user line a ProductOwner line answers. A user line without an answer is
--   still to be handled — the session handles it when it wakes, in order.
-- * `about_event`: the event a ProductOwner line reports ("your service is live at …").
--   Unique per session, so replaying the event journal after a crash says nothing twice.
-- * `cursors`: named positions in the event journal for readers that must resume where they
--   stopped (the sessions' news reader).

ALTER TABLE session_messages
    ADD COLUMN reply_to    bigint REFERENCES session_messages (id) ON DELETE CASCADE,
    ADD COLUMN about_event bigint;
CREATE INDEX session_messages_reply_to_idx ON session_messages (reply_to);
CREATE UNIQUE INDEX session_messages_about_event_key
    ON session_messages (session_id, about_event) WHERE about_event IS NOT NULL;

CREATE TABLE cursors (
    name       text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 100),
    position   bigint NOT NULL CHECK (position >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
