-- DPoP (RFC 9449, issue #15 item 1). `dpop_jkt` on a code: the thumbprint of the key the
-- client bound it to at /authorize or /par; its redemption must prove that key. On a grant
-- (the refresh-token family): the key a public client's refresh tokens are bound to.
-- `dpop_bound_access_tokens` on a client: it must always present a DPoP proof at /token.
ALTER TABLE auth_codes ADD COLUMN dpop_jkt TEXT;
ALTER TABLE grants ADD COLUMN dpop_jkt TEXT;
ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens BOOLEAN NOT NULL DEFAULT FALSE;
