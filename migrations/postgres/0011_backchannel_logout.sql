-- OIDC Back-Channel Logout 1.0 (issue #14 item 8) and the durable delivery queue it uses.

-- A client's back-channel logout settings (`backchannel_logout_uri`,
-- `backchannel_logout_session_required`); no row means no back-channel logout.
CREATE TABLE client_backchannel_logout (
    client_id TEXT PRIMARY KEY REFERENCES clients (id) ON DELETE CASCADE,
    uri TEXT NOT NULL,
    session_required BOOLEAN NOT NULL DEFAULT FALSE
);

-- Which clients took part in which browser session (an ID token or code was redeemed for it),
-- so the clients can be told when the session ends. Rows go when the session's end is handled.
CREATE TABLE session_clients (
    session_id TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (session_id, client_id)
);
CREATE INDEX session_clients_user ON session_clients (user_id);

-- Outgoing deliveries (back-channel logout tokens; later events and webhooks): claimed by any
-- instance when due, retried with backoff, kept after delivery or failure until purged.
CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    target_url TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT,
    failed_at BIGINT
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at);
