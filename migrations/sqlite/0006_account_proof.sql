-- no-transaction
-- Account pre-hijacking (issue 12, item 4): an account made from an upstream that did not assert a
-- trusted, verified email has no email at all (NULL; UNIQUE allows any number of NULLs), and the
-- time the email was verified is kept, so a password reset can remove every upstream identity
-- linked before the mailbox was proven. Already-verified accounts count as verified when made.
-- SQLite cannot drop NOT NULL: the table is rebuilt with foreign keys off (outside a transaction,
-- where the pragma has effect), so dropping the old table cascades nowhere and the other tables'
-- references, which name `users`, point at the new one.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE users_new (
    id TEXT PRIMARY KEY,
    sub TEXT NOT NULL UNIQUE,
    email TEXT,
    email_normalized TEXT UNIQUE,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    password_hash TEXT,
    name TEXT,
    given_name TEXT,
    family_name TEXT,
    picture TEXT,
    phone_number TEXT,
    phone_number_verified BOOLEAN NOT NULL DEFAULT FALSE,
    locale TEXT,
    zoneinfo TEXT,
    role TEXT NOT NULL DEFAULT 'user',
    status TEXT NOT NULL DEFAULT 'active',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    permissions_version BIGINT NOT NULL DEFAULT 1,
    deleted_at BIGINT,
    email_verified_at BIGINT
);
INSERT INTO users_new (id, sub, email, email_normalized, email_verified, password_hash, name, given_name, family_name,
    picture, phone_number, phone_number_verified, locale, zoneinfo, role, status, created_at, updated_at,
    permissions_version, deleted_at, email_verified_at)
SELECT id, sub, email, email_normalized, email_verified, password_hash, name, given_name, family_name,
    picture, phone_number, phone_number_verified, locale, zoneinfo, role, status, created_at, updated_at,
    permissions_version, deleted_at, CASE WHEN email_verified THEN created_at END
FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
COMMIT;
PRAGMA foreign_keys = ON;
