-- Bounded state (issue 12, item 6): accounts made by self-registration are marked, so that
-- housekeeping can delete those never verified after OXIDP_UNVERIFIED_ACCOUNT_TTL. Every account
-- from before this migration, and every account made by the CLI, an administrator, an import or
-- an upstream login, stays unmarked and is never deleted this way.
ALTER TABLE users ADD COLUMN self_registered BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX users_unverified_self_registered ON users (created_at)
    WHERE self_registered AND email_verified_at IS NULL;
