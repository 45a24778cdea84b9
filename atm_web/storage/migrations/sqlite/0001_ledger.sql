CREATE TABLE settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    max_debt_cents INTEGER NOT NULL CHECK (max_debt_cents >= 0)
) STRICT;
INSERT INTO settings (id, max_debt_cents) VALUES (1, 0);
CREATE TABLE accounts (
    account_number TEXT PRIMARY KEY,
    balance_cents INTEGER NOT NULL DEFAULT 0,
    overdraft_limit_cents INTEGER NOT NULL CHECK (overdraft_limit_cents >= 0),
    own_overdraft_limit_cents INTEGER CHECK (own_overdraft_limit_cents >= 0),
    opened_at TEXT NOT NULL,
    CONSTRAINT balance_within_limit CHECK (balance_cents >= -overdraft_limit_cents)
) STRICT;
CREATE TABLE journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_number TEXT NOT NULL REFERENCES accounts(account_number),
    kind TEXT NOT NULL CHECK (kind IN ('deposit', 'withdrawal')),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    balance_after_cents INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    actor TEXT NOT NULL
) STRICT;
CREATE INDEX journal_by_account ON journal(account_number, id);
CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
    BEGIN SELECT RAISE(ABORT, 'journal rows are immutable'); END;
CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
    BEGIN SELECT RAISE(ABORT, 'journal rows are immutable'); END;
-- A balance changes only as a journal row is written, in the same statement: a row that cannot be
-- applied (CHECK balance_within_limit) is not written either. An account opens with its first row, at
-- the default limit (settings.max_debt_cents, kept equal to MAX_DEBT at start-up); a limit raised to
-- cover a debt above a lowered MAX_DEBT shrinks with each change, never below MAX_DEBT.
CREATE TRIGGER journal_applies_to_balance AFTER INSERT ON journal
BEGIN
    INSERT INTO accounts (account_number, balance_cents, overdraft_limit_cents, opened_at)
        SELECT NEW.account_number, 0, max_debt_cents, NEW.created_at FROM settings
        WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE account_number = NEW.account_number);
    UPDATE accounts SET
        balance_cents = balance_cents + iif(NEW.kind = 'deposit', NEW.amount_cents, -NEW.amount_cents),
        overdraft_limit_cents = iif(own_overdraft_limit_cents IS NOT NULL, overdraft_limit_cents,
            max((SELECT max_debt_cents FROM settings), min(overdraft_limit_cents,
                -(balance_cents + iif(NEW.kind = 'deposit', NEW.amount_cents, -NEW.amount_cents)))))
        WHERE account_number = NEW.account_number;
    SELECT RAISE(ABORT, 'journal balance_after does not match the account balance')
        WHERE (SELECT balance_cents FROM accounts WHERE account_number = NEW.account_number)
              != NEW.balance_after_cents;
END;
