-- A revocation generation every server can read: each token revocation adds one to it in its own transaction,
-- and a server trusts a token it verified earlier only while the generation it reads has not moved
-- (staff.TokenCache; the read is shared by the requests that arrive together, storage/postgresql.py).
CREATE TABLE token_revocations (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO token_revocations (id, generation) VALUES (1, 0);
