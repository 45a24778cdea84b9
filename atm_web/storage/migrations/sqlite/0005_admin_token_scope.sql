-- API tokens gain the admin scope (may also set overdraft limits); SQLite rebuilds to change a CHECK.
CREATE TABLE api_tokens_v6 (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
) STRICT;
INSERT INTO api_tokens_v6 SELECT * FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_v6 RENAME TO api_tokens;
