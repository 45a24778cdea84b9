-- Each journal row carries a SHA-256 chained to the previous row of its account (see accounts.row_hash);
-- rows written before this version have none and stay outside the chain.
ALTER TABLE journal ADD COLUMN hash TEXT;
CREATE TABLE verifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    ok INTEGER NOT NULL CHECK (ok IN (0, 1)),
    rows_checked INTEGER NOT NULL,
    first_problem TEXT NOT NULL DEFAULT ''
) STRICT;
