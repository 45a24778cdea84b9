-- Cards and ATMs (issue 24). Cards: a customer's card for one or more of the accounts they hold, one of them the default.
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


-- ATMs (issue 24): cash devices of the branch. Each has a cash account of its own ('@atm-<id>', of the kind of a
-- drawer's: a cash account that never goes below zero, counted in the day's proof), so its expected cash is that
-- account's balance; its expected notes per cassette are kept by the transactions that move its cash.
CREATE TABLE atms (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    location TEXT NOT NULL,
    account_number TEXT NOT NULL UNIQUE REFERENCES accounts(account_number),
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
) STRICT;
CREATE TABLE atm_cassettes (
    atm_id INTEGER NOT NULL REFERENCES atms(id),
    position INTEGER NOT NULL CHECK (position BETWEEN 1 AND 4),
    denomination_cents INTEGER NOT NULL CHECK (denomination_cents > 0),
    notes INTEGER NOT NULL DEFAULT 0 CHECK (notes >= 0),  -- the notes it should hold: loaded less paid out
    PRIMARY KEY (atm_id, position)
) STRICT;

-- A replenishment: the blind count of what was left (each cassette, the deposit bin, the retract bin) and the notes
-- loaded, entered by one person, carried out when a second confirms it (an approval), signed off beyond tolerance.
CREATE TABLE atm_replenishments (
    id INTEGER PRIMARY KEY,
    atm_id INTEGER NOT NULL REFERENCES atms(id),
    status TEXT NOT NULL CHECK (status IN ('pending', 'pending_signoff', 'done', 'cancelled')),
    counted TEXT NOT NULL,  -- JSON: {"cassettes": {"1": notes...}, "deposit_bin": {"cents": notes}, "retract_bin": {...}}
    loaded TEXT NOT NULL,  -- JSON: {"1": notes...}
    counted_cents INTEGER NOT NULL CHECK (counted_cents >= 0),
    loaded_cents INTEGER NOT NULL CHECK (loaded_cents >= 0),
    entered_by TEXT NOT NULL,
    entered_at TEXT NOT NULL,
    confirmed_by TEXT,
    confirmed_at TEXT,
    expected_cents INTEGER,  -- the ATM's cash when it was confirmed
    expected_notes TEXT,  -- JSON, the cassettes' expected notes then
    variance_cents INTEGER,
    entry_id INTEGER,  -- the return's transaction (the load's follows it)
    signed_off_by TEXT,
    signoff_note TEXT
) STRICT;
CREATE UNIQUE INDEX atm_replenishments_one_open ON atm_replenishments(atm_id)
    WHERE status IN ('pending', 'pending_signoff');
CREATE INDEX atm_replenishments_by_atm ON atm_replenishments(atm_id, id);

-- The ATM's electronic journal: every event, append-only, hash-chained per ATM, numbered per ATM (the trace number).
CREATE TABLE atm_journal (
    atm_id INTEGER NOT NULL REFERENCES atms(id),
    seq INTEGER NOT NULL CHECK (seq > 0),
    at TEXT NOT NULL,
    event TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    actor TEXT NOT NULL,
    hash TEXT NOT NULL,  -- sha256 of the previous row's hash and this row (ledger/chains.py: atm_row_hash)
    PRIMARY KEY (atm_id, seq)
) STRICT;
CREATE TRIGGER atm_journal_no_update BEFORE UPDATE ON atm_journal
    BEGIN SELECT RAISE(ABORT, 'atm_journal rows are immutable'); END;
CREATE TRIGGER atm_journal_no_delete BEFORE DELETE ON atm_journal
    BEGIN SELECT RAISE(ABORT, 'atm_journal rows are immutable'); END;
CREATE TRIGGER atms_no_delete BEFORE DELETE ON atms
    BEGIN SELECT RAISE(ABORT, 'atms are kept'); END;

-- Unblocking a card, confirming an ATM's replenishment and signing off its variance are requests held for a second
-- person: approvals learn the kinds and name the card or the replenishment.
-- SQLite cannot change a CHECK in place, so approvals is rebuilt, every row copied as it is.
CREATE TABLE approvals_v18 (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('withdrawal', 'reversal', 'overdraft_limit', 'drawer_signoff',
                                       'card_unblock', 'atm_replenishment', 'atm_signoff')),
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
    replenishment_id INTEGER REFERENCES atm_replenishments(id),
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
CREATE INDEX approvals_by_replenishment ON approvals(replenishment_id) WHERE replenishment_id IS NOT NULL;
