-- A revocation generation in the database (each token revocation adds one to it in its own transaction), as on
-- PostgreSQL, where servers share no disk; SQLite's processes also see the file beside the database replaced.
CREATE TABLE token_revocations (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
) STRICT;
INSERT INTO token_revocations (id, generation) VALUES (1, 0);
