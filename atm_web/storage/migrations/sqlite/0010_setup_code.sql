-- The first-run setup code lives in the database (it was a file beside it), so that web servers which share
-- no disk print and accept the same one. It exists only while no teller does.
CREATE TABLE setup_code (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    code TEXT NOT NULL
) STRICT;
