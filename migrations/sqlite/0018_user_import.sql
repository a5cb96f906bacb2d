-- `oxidp user import` (issue #19 item 2): people are matched by the id the old system gave them
-- (`external_id`) or by email; `imported_hash_digest` (SHA-256 of the last imported password
-- hash) tells whether the person changed their password since, which a re-import never undoes
-- without `--overwrite`.
ALTER TABLE users ADD COLUMN external_id TEXT;
ALTER TABLE users ADD COLUMN imported_hash_digest TEXT;
CREATE UNIQUE INDEX users_external_id ON users (external_id);
