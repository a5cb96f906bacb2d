-- Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document; issue #14 item 2):
-- a client whose id is an https URL, made from the JSON document at that URL. Its row in
-- `clients` is refreshed from the document once `expires_at` (from HTTP caching, kept between
-- 5 minutes and 24 hours) has passed.
CREATE TABLE client_metadata_documents (
    client_id TEXT PRIMARY KEY REFERENCES clients (id) ON DELETE CASCADE,
    fetched_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
