-- RFC 9126: a client that must push its authorization requests (POST /par) before /authorize.
ALTER TABLE clients ADD COLUMN require_par BOOLEAN NOT NULL DEFAULT FALSE;
