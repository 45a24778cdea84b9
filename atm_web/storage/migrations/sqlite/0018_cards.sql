-- Cards (issue 24): a customer's card for one or more of the accounts they hold, one of them the default.
-- The full card number is never stored: the card is found by a keyed digest of it (HMAC with PIN_KEY, a secret the
-- database does not hold) and shown by its last 4 digits. The PIN is kept as a slow salted hash of a keyed digest,
-- the one-time PIN-setting code as a keyed digest, so a copy of the database alone verifies neither.
CREATE TABLE cards (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    number_digest TEXT NOT NULL UNIQUE,
    last4 TEXT NOT NULL CHECK (length(last4) = 4),
    expires TEXT NOT NULL,  -- YYYY-MM: valid to the last day of that month
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'blocked', 'lost', 'expired')),
    pin_hash TEXT,  -- none until the customer sets it with the code
    code_digest TEXT,  -- the PIN-setting code's, until it is used
    pin_tries INTEGER NOT NULL DEFAULT 0 CHECK (pin_tries BETWEEN 0 AND 3),  -- wrong PINs in a row, and checks under way
    issued_at TEXT NOT NULL,
    issued_by TEXT NOT NULL,
    form_key TEXT,
    CHECK ((pin_hash IS NULL) != (code_digest IS NULL)),
    UNIQUE (issued_by, form_key)
) STRICT;
CREATE INDEX cards_by_customer ON cards(customer_id);

CREATE TABLE card_accounts (
    card_id INTEGER NOT NULL REFERENCES cards(id),
    account_number TEXT NOT NULL REFERENCES accounts(account_number),
    is_default INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
    PRIMARY KEY (card_id, account_number)
) STRICT;
CREATE UNIQUE INDEX card_accounts_one_default ON card_accounts(card_id) WHERE is_default = 1;

-- A lost card stays lost (a new card is issued); cards and their accounts are kept.
CREATE TRIGGER cards_lost_is_final BEFORE UPDATE ON cards WHEN OLD.status = 'lost'
    BEGIN SELECT RAISE(ABORT, 'card_lost_is_final'); END;
CREATE TRIGGER cards_no_delete BEFORE DELETE ON cards
    BEGIN SELECT RAISE(ABORT, 'cards are kept'); END;
CREATE TRIGGER card_accounts_no_change BEFORE UPDATE ON card_accounts
    BEGIN SELECT RAISE(ABORT, 'a card''s accounts are kept'); END;
CREATE TRIGGER card_accounts_no_delete BEFORE DELETE ON card_accounts
    BEGIN SELECT RAISE(ABORT, 'a card''s accounts are kept'); END;

-- Unblocking a card is a request held for a second person: approvals learn the kind and name the card.
-- SQLite cannot change a CHECK in place, so approvals is rebuilt, every row copied as it is.
CREATE TABLE approvals_v18 (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('withdrawal', 'reversal', 'overdraft_limit', 'drawer_signoff',
                                       'card_unblock')),
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
    card_id INTEGER REFERENCES cards(id),
    UNIQUE (requested_by, form_key)
) STRICT;
INSERT INTO approvals_v18 (id, kind, status, account_number, amount_cents, tx_id, limit_cents, session_id, detail,
                           id_check, requested_by, form_key, requested_at, expires_at, decided_by, decided_at,
                           decision_note, entry_id)
    SELECT id, kind, status, account_number, amount_cents, tx_id, limit_cents, session_id, detail, id_check,
           requested_by, form_key, requested_at, expires_at, decided_by, decided_at, decision_note, entry_id
    FROM approvals;
DROP TABLE approvals;
ALTER TABLE approvals_v18 RENAME TO approvals;
CREATE INDEX approvals_by_status ON approvals(status, id);
CREATE INDEX approvals_by_entry ON approvals(entry_id) WHERE entry_id IS NOT NULL;
CREATE INDEX approvals_by_session ON approvals(session_id) WHERE session_id IS NOT NULL;
CREATE INDEX approvals_by_card ON approvals(card_id) WHERE card_id IS NOT NULL;
