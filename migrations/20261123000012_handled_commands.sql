-- Commands a process has handled, by envelope message id, with the reply it sent: a stream
-- redelivers a command whose acknowledgement was lost (at-least-once), and the handler answers
-- it from here instead of doing it twice (spawning a second worker, say).
CREATE TABLE handled_commands (
    message_id uuid PRIMARY KEY,
    stream     text NOT NULL,
    reply      jsonb NOT NULL,
    handled_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX handled_commands_handled_at_idx ON handled_commands (handled_at);
