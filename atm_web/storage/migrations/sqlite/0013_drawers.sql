-- Cash drawers (drawers.py): a teller's drawer session, with its own cash account '@drawer-<id>' opened with
-- it; vault movements a teller asks for and an administrator confirms; the days closed (end_of_day.py).
CREATE TABLE drawer_sessions (
    id INTEGER PRIMARY KEY,
    teller_id INTEGER NOT NULL REFERENCES tellers(id),
    account_number TEXT NOT NULL UNIQUE REFERENCES accounts(account_number),
    status TEXT NOT NULL CHECK (status IN ('open', 'pending_signoff', 'closed')),
    business_date TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    opening_counts TEXT NOT NULL,
    opening_cents INTEGER NOT NULL CHECK (opening_cents >= 0),
    closed_at TEXT,
    closed_by TEXT,
    closing_counts TEXT,
    expected_cents INTEGER,
    counted_cents INTEGER,
    variance_cents INTEGER,
    signed_off_by TEXT,
    signed_off_at TEXT,
    signoff_note TEXT
) STRICT;
-- One session per teller that is not closed yet (open, or waiting for a sign-off).
CREATE UNIQUE INDEX drawer_sessions_one_per_teller ON drawer_sessions(teller_id) WHERE status != 'closed';
CREATE INDEX drawer_sessions_by_date ON drawer_sessions(business_date);

CREATE TABLE vault_movements (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES drawer_sessions(id),
    direction TEXT NOT NULL CHECK (direction IN ('to_vault', 'to_drawer')),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected', 'cancelled')),
    decided_by TEXT,
    decided_at TEXT,
    entry_id INTEGER
) STRICT;
CREATE INDEX vault_movements_by_session ON vault_movements(session_id);

CREATE TABLE closed_days (
    business_date TEXT PRIMARY KEY,
    closed_at TEXT NOT NULL,
    closed_by TEXT NOT NULL,
    csv_sha256 TEXT NOT NULL
) STRICT;

-- Cash moves through a drawer only while its session is open: the database refuses any row on a drawer's
-- account otherwise (a deposit racing the teller's own close in another tab, say).
CREATE TRIGGER drawer_must_be_open BEFORE INSERT ON journal
    WHEN NEW.account_number LIKE '@drawer-%' AND NOT EXISTS (
        SELECT 1 FROM drawer_sessions WHERE account_number = NEW.account_number AND status = 'open')
    BEGIN SELECT RAISE(ABORT, 'drawer_not_open'); END;
