-- Login attempts are reserved before the password check (pending = 1) and kept as failures (0), so no more
-- than the policy's number can reach the check at once; earlier failures carry over.
CREATE TABLE login_attempts (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL,
    address TEXT NOT NULL,
    at REAL NOT NULL,
    pending INTEGER NOT NULL CHECK (pending IN (0, 1))
) STRICT;
INSERT INTO login_attempts (username, address, at, pending) SELECT username, address, at, 0 FROM login_failures;
DROP TABLE login_failures;
CREATE INDEX login_attempts_by_username ON login_attempts(username, at);
CREATE INDEX login_attempts_by_address ON login_attempts(address, at);
