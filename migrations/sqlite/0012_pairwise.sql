-- Pairwise subject identifiers (OIDC Core §8.1; issue #14 item 7). A client with a row here gets
-- `sub` = a keyed hash of its sector and the person: the host of its redirect URIs, the host of
-- its validated `sector_identifier_uri`, or its own client_id for loopback redirect URIs.
CREATE TABLE client_pairwise (
    client_id TEXT PRIMARY KEY REFERENCES clients (id) ON DELETE CASCADE,
    sector TEXT NOT NULL,
    sector_identifier_uri TEXT
);
