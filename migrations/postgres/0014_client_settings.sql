-- The browser session a grant came from (issue #14 item 8): ID tokens from its refresh tokens
-- carry the same `sid` as the one from the code, so a back-channel logout names them too.
ALTER TABLE grants ADD COLUMN session_id TEXT;

-- `request_object_signing_alg` (RFC 9101 §10.5 / OIDC Registration §2): when a client registers
-- one, its request objects must use exactly that algorithm.
ALTER TABLE client_jwt_auth ADD COLUMN request_object_alg TEXT;

-- Clients that registered themselves are marked (`dynamic_registration` or
-- `client_id_metadata_document`; NULL: made by an administrator), and any client can be
-- disabled by an administrator without deleting it (issue #14 item 1).
ALTER TABLE clients ADD COLUMN registered_via TEXT;
ALTER TABLE clients ADD COLUMN disabled_at BIGINT;
UPDATE clients SET registered_via = 'dynamic_registration'
    WHERE id IN (SELECT client_id FROM client_registrations);
UPDATE clients SET registered_via = 'client_id_metadata_document'
    WHERE id IN (SELECT client_id FROM client_metadata_documents);
