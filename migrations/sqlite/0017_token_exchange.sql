-- Token exchange (RFC 8693; issue #15 item 3): what a client allowed the grant may ask for.
-- `audiences` and `resources` are JSON lists of registered client ids and RFC 8707 resource
-- indicators; `delegation` lets it present actor tokens without the subject token's `may_act`.
CREATE TABLE client_token_exchange (
    client_id TEXT PRIMARY KEY REFERENCES clients (id) ON DELETE CASCADE,
    audiences TEXT NOT NULL,
    resources TEXT NOT NULL,
    delegation BOOLEAN NOT NULL
);
