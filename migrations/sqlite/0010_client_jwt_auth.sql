-- JWT client authentication (RFC 7523, OIDC Core §9; issue #14 item 4). A client that
-- authenticates with a signed assertion has one row: `private_key_jwt` with its public keys
-- (`jwks`, a JSON JWK set, or `jwks_uri`, fetched under the outgoing-request rule), or `client_secret_jwt` with its secret encrypted like the signing
-- keys (it must be read back to check an HMAC; such clients have no secret_hash).
CREATE TABLE client_jwt_auth (
    client_id TEXT PRIMARY KEY REFERENCES clients (id) ON DELETE CASCADE,
    method TEXT NOT NULL,
    jwks TEXT,
    jwks_uri TEXT,
    secret_encrypted TEXT,
    signing_alg TEXT
);
