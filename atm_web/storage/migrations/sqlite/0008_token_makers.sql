-- Leavers keep no keys: a token knows the teller who made it (none for the CLI's), and why it was revoked.
ALTER TABLE api_tokens ADD COLUMN creator_id INTEGER REFERENCES tellers(id);
ALTER TABLE api_tokens ADD COLUMN revoked_reason TEXT NOT NULL DEFAULT '';
UPDATE api_tokens SET creator_id = (SELECT id FROM tellers WHERE 'teller:' || username = created_by);
UPDATE api_tokens SET revoked_reason = 'revoked' WHERE revoked_at IS NOT NULL;
CREATE INDEX api_tokens_by_creator ON api_tokens(creator_id) WHERE creator_id IS NOT NULL;
