-- RFC 8628 device authorizations (issue #15 item 2), shared by every instance. The device code
-- and the user code are secrets: only their keyed hashes are stored (the user code normalised:
-- upper case, no dash). `status` is pending, approved, denied or consumed; `poll_interval`
-- grows by 5 s on each `slow_down`.
CREATE TABLE device_codes (
    id TEXT PRIMARY KEY,
    device_code_hash TEXT NOT NULL UNIQUE,
    user_code_hash TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    resource TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    poll_interval BIGINT NOT NULL,
    last_polled_at BIGINT,
    status TEXT NOT NULL,
    user_id TEXT,
    session_id TEXT,
    auth_time BIGINT,
    amr TEXT,
    grant_id TEXT
);
CREATE INDEX device_codes_expiry ON device_codes (expires_at);
