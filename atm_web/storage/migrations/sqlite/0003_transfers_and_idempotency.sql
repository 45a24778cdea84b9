-- Transfers (and later reversals): new kinds, a link to the related row, a memo. SQLite cannot change a
-- CHECK in place, so the journal is rebuilt (its triggers only fire on row changes, not on DROP).
CREATE TABLE journal_v3 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_number TEXT NOT NULL REFERENCES accounts(account_number),
    kind TEXT NOT NULL CHECK (kind IN ('deposit', 'withdrawal', 'transfer_in', 'transfer_out',
                                       'reversal_credit', 'reversal_debit')),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    balance_after_cents INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    actor TEXT NOT NULL,
    related_id INTEGER REFERENCES journal(id),
    memo TEXT NOT NULL DEFAULT ''
) STRICT;
INSERT INTO journal_v3 (id, account_number, kind, amount_cents, balance_after_cents, created_at, actor)
    SELECT id, account_number, kind, amount_cents, balance_after_cents, created_at, actor FROM journal;
DROP TABLE journal;
ALTER TABLE journal_v3 RENAME TO journal;
CREATE INDEX journal_by_account ON journal(account_number, id);
CREATE INDEX journal_by_related ON journal(related_id) WHERE related_id IS NOT NULL;
CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
    BEGIN SELECT RAISE(ABORT, 'journal rows are immutable'); END;
CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
    BEGIN SELECT RAISE(ABORT, 'journal rows are immutable'); END;
CREATE TRIGGER journal_applies_to_balance AFTER INSERT ON journal
BEGIN
    INSERT INTO accounts (account_number, balance_cents, overdraft_limit_cents, opened_at)
        SELECT NEW.account_number, 0, max_debt_cents, NEW.created_at FROM settings
        WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE account_number = NEW.account_number);
    UPDATE accounts SET
        balance_cents = balance_cents + iif(NEW.kind IN ('deposit', 'transfer_in', 'reversal_credit'),
                                            NEW.amount_cents, -NEW.amount_cents),
        overdraft_limit_cents = iif(own_overdraft_limit_cents IS NOT NULL, overdraft_limit_cents,
            max((SELECT max_debt_cents FROM settings), min(overdraft_limit_cents,
                -(balance_cents + iif(NEW.kind IN ('deposit', 'transfer_in', 'reversal_credit'),
                                      NEW.amount_cents, -NEW.amount_cents)))))
        WHERE account_number = NEW.account_number;
    SELECT RAISE(ABORT, 'journal balance_after does not match the account balance')
        WHERE (SELECT balance_cents FROM accounts WHERE account_number = NEW.account_number)
              != NEW.balance_after_cents;
END;
-- Idempotency-Key (and one-time form keys): the outcome of a request, stored in the same transaction as
-- its ledger change; a journal row id, or the refusal it met.
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    transaction_id INTEGER REFERENCES journal(id),
    refusal TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT;
CREATE INDEX idempotency_keys_by_age ON idempotency_keys(created_at);
