-- Account pre-hijacking (issue 12, item 4): an account made from an upstream that did not assert a
-- trusted, verified email has no email at all (NULL; UNIQUE allows any number of NULLs), and the
-- time the email was verified is kept, so a password reset can remove every upstream identity
-- linked before the mailbox was proven. Already-verified accounts count as verified when made.
ALTER TABLE users ALTER COLUMN email DROP NOT NULL;
ALTER TABLE users ALTER COLUMN email_normalized DROP NOT NULL;
ALTER TABLE users ADD COLUMN email_verified_at BIGINT;
UPDATE users SET email_verified_at = created_at WHERE email_verified;
