-- The ATM screen (issue 25): a browser paired with an ATM by a one-time link (its code kept as a keyed digest, for 10
-- minutes), then known by its device cookie (its secret kept as a keyed digest: the database alone cannot make
-- one); an administrator unpairs it. The customer's session at the screen lives on its row: one customer at a time,
-- bound to the device and the card (the card number's keyed digest, never the number), its step, its last touch.
CREATE TABLE atm_screens (
    id INTEGER PRIMARY KEY,
    atm_id INTEGER NOT NULL REFERENCES atms(id),
    code_digest TEXT UNIQUE,  -- the pairing link's, until it is used or expires
    code_expires TEXT,
    device_digest TEXT UNIQUE,  -- the device cookie's secret, once paired
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    paired_at TEXT,
    unpaired_at TEXT,
    unpaired_by TEXT,
    session_token TEXT,  -- the customer's session: a random token its pages carry (NULL: Welcome)
    session_step TEXT,
    card_digest TEXT,
    card_id INTEGER REFERENCES cards(id),  -- once the PIN is accepted
    account_number TEXT,
    trace INTEGER,  -- the withdrawal under way
    seen_at REAL,  -- the last touch, for the idle timeout
    card_attempts TEXT NOT NULL DEFAULT '[]',  -- JSON: the times of the last minute's card attempts
    CHECK ((code_digest IS NULL) OR (device_digest IS NULL))
) STRICT;
CREATE INDEX atm_screens_by_atm ON atm_screens(atm_id);
CREATE TRIGGER atm_screens_no_delete BEFORE DELETE ON atm_screens
    BEGIN SELECT RAISE(ABORT, 'atm screens are kept'); END;
