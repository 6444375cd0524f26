-- The LLM ProductOwner's decisions: for each user line it was asked about, the tool call the
-- model chose (or that the offline parser answered because the provider failed). Answering a
-- line again after a crash reads its decision here, so it is deterministic and never asks the
-- model twice. Never holds a secret value: the model never sees one.
CREATE TABLE po_decisions (
    message_id bigint PRIMARY KEY REFERENCES session_messages (id) ON DELETE CASCADE,
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    decision   jsonb NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX po_decisions_session_id_message_id_idx ON po_decisions (session_id, message_id);
