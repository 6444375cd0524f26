-- A project's secrets, encrypted at rest with XChaCha20-Poly1305 under the master key, which
-- the database never sees. Associated data binds each ciphertext to its project and name, so
-- a ciphertext copied to another row fails to decrypt. `key_id` names the master key that
-- encrypted the row (a truncated SHA-256 of it), so a wrong key is reported as such.
CREATE TABLE secrets (
    id         uuid PRIMARY KEY,
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name       text NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]{0,127}$'),
    key_id     text NOT NULL CHECK (key_id ~ '^[0-9a-f]{16}$'),
    nonce      bytea NOT NULL CHECK (length(nonce) = 24),
    ciphertext bytea NOT NULL CHECK (length(ciphertext) >= 16),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Also the index for project_id (its leading column).
    CONSTRAINT secrets_project_name_key UNIQUE (project_id, name)
);
