-- Dynamic client registration (RFC 7591/7592, issue #14 item 1). Initial access tokens are kept
-- as keyed hashes with their expiry and remaining uses (NULL: unlimited). A registered client has
-- one row here: how it came (`token` or `open`), the keyed hash of its registration access token
-- (replaced at every update), and the metadata it registered that oxidp only echoes (JSON).
CREATE TABLE registration_tokens (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at BIGINT NOT NULL,
    uses_left BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE client_registrations (
    client_id TEXT PRIMARY KEY REFERENCES clients (id) ON DELETE CASCADE,
    mode TEXT NOT NULL,
    access_token_hash TEXT NOT NULL UNIQUE,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX client_registrations_open ON client_registrations (mode, created_at);
