-- Customers and four eyes (issue 13): the supervisor role, customers and the accounts they hold, requests held
-- for a second person (approvals.py), and the large-cash worklist (large_cash.py).
--
-- SQLite cannot change a CHECK in place, so tellers is rebuilt with the new role, every row copied as it is
-- (foreign keys are checked after the migration: storage/sqlite.py).
CREATE TABLE tellers_v14 (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('teller', 'supervisor', 'admin')),
    active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at TEXT NOT NULL
) STRICT;
INSERT INTO tellers_v14 (id, username, password_hash, role, active, created_at)
    SELECT id, username, password_hash, role, active, created_at FROM tellers;
DROP TABLE tellers;
ALTER TABLE tellers_v14 RENAME TO tellers;

CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL,
    name_folded TEXT NOT NULL,  -- full_name, casefolded: what a search by part of a name compares
    date_of_birth TEXT NOT NULL,
    document_type TEXT NOT NULL,
    document_number TEXT NOT NULL,
    document_country TEXT NOT NULL,
    address TEXT NOT NULL,
    phone TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    UNIQUE (document_type, document_country, document_number)
) STRICT;
CREATE INDEX customers_by_document ON customers(document_number);

CREATE TABLE account_holders (
    account_number TEXT NOT NULL REFERENCES accounts(account_number),
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    added_at TEXT NOT NULL,
    added_by TEXT NOT NULL,
    PRIMARY KEY (account_number, customer_id)
) STRICT;
CREATE INDEX account_holders_by_customer ON account_holders(customer_id);

CREATE TABLE approvals (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('withdrawal', 'reversal', 'overdraft_limit', 'drawer_signoff')),
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'declined', 'expired')),
    account_number TEXT,
    amount_cents INTEGER,
    tx_id INTEGER,
    limit_cents INTEGER,
    session_id INTEGER REFERENCES drawer_sessions(id),
    detail TEXT NOT NULL DEFAULT '',
    id_check TEXT,
    requested_by INTEGER NOT NULL REFERENCES tellers(id),
    form_key TEXT,
    requested_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    decided_by TEXT,
    decided_at REAL,
    decision_note TEXT,
    entry_id INTEGER,
    UNIQUE (requested_by, form_key)
) STRICT;
CREATE INDEX approvals_by_status ON approvals(status, id);
CREATE INDEX approvals_by_entry ON approvals(entry_id) WHERE entry_id IS NOT NULL;

CREATE TABLE large_cash (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    business_date TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'filed')),
    created_at TEXT NOT NULL,
    filed_by TEXT,
    filed_at TEXT,
    UNIQUE (customer_id, business_date)
) STRICT;
CREATE TABLE large_cash_checks (
    id INTEGER PRIMARY KEY,
    report_id INTEGER NOT NULL REFERENCES large_cash(id),
    entry_id INTEGER NOT NULL,
    present_customer_id INTEGER NOT NULL REFERENCES customers(id),
    document TEXT NOT NULL,
    checked_by TEXT NOT NULL,
    checked_at TEXT NOT NULL
) STRICT;
CREATE INDEX large_cash_checks_by_report ON large_cash_checks(report_id);
