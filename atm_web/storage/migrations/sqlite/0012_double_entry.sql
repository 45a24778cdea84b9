-- Double entry (issue 12): every transaction is two or more journal rows that sum to zero, one sign convention
-- for every account (credit positive: a customer's balance is what the bank owes them; a drawer holding 500.00
-- in notes stands at -500.00). The bank's own accounts (bank_accounts.py) are ledger accounts too, numbered
-- outside the customer pattern ('@vault', '@clearing', ...), so no customer number can collide with them.
--
-- The journal gains: the kinds 'debit' and 'credit' (the bank's side of a posting), entry_id (the transaction a
-- row belongs to; rows written before this version have none and are hashed as they were) and business_date.
-- SQLite cannot change a CHECK in place, so the journal is rebuilt: every row and hash copied as it is (foreign
-- keys are checked after the migration: storage/sqlite.py).
CREATE TABLE journal_v12 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_number TEXT NOT NULL REFERENCES accounts(account_number),
    kind TEXT NOT NULL CHECK (kind IN ('deposit', 'withdrawal', 'transfer_in', 'transfer_out',
                                       'reversal_credit', 'reversal_debit', 'debit', 'credit')),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    balance_after_cents INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    actor TEXT NOT NULL,
    related_id INTEGER REFERENCES journal(id),
    memo TEXT NOT NULL DEFAULT '',
    hash TEXT,
    entry_id INTEGER,
    business_date TEXT,
    CHECK ((entry_id IS NULL) = (business_date IS NULL))
) STRICT;
INSERT INTO journal_v12 (id, account_number, kind, amount_cents, balance_after_cents, created_at, actor,
                         related_id, memo, hash)
    SELECT id, account_number, kind, amount_cents, balance_after_cents, created_at, actor, related_id, memo, hash
    FROM journal;
DROP TABLE journal;
ALTER TABLE journal_v12 RENAME TO journal;
CREATE INDEX journal_by_account ON journal(account_number, id);
CREATE INDEX journal_by_related ON journal(related_id) WHERE related_id IS NOT NULL;
CREATE INDEX journal_by_entry ON journal(entry_id);
CREATE INDEX journal_by_business_date ON journal(business_date, id);
CREATE UNIQUE INDEX journal_one_reversal ON journal(related_id)
    WHERE kind IN ('reversal_credit', 'reversal_debit');
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
        balance_cents = balance_cents + iif(NEW.kind IN ('deposit', 'transfer_in', 'reversal_credit', 'credit'),
                                            NEW.amount_cents, -NEW.amount_cents),
        overdraft_limit_cents = iif(own_overdraft_limit_cents IS NOT NULL, overdraft_limit_cents,
            max((SELECT max_debt_cents FROM settings), min(overdraft_limit_cents,
                -(balance_cents + iif(NEW.kind IN ('deposit', 'transfer_in', 'reversal_credit', 'credit'),
                                      NEW.amount_cents, -NEW.amount_cents)))))
        WHERE account_number = NEW.account_number;
    SELECT RAISE(ABORT, 'journal balance_after does not match the account balance')
        WHERE (SELECT balance_cents FROM accounts WHERE account_number = NEW.account_number)
              != NEW.balance_after_cents;
END;

-- What an account is. Cash (the vault, each drawer) never goes below zero notes: its balance never above 0.
-- A trigger, since SQLite cannot add a CHECK in place (PostgreSQL's is a CHECK of the same name); raised inside
-- the journal insert, it aborts the whole statement as the CHECK on the overdraft limit does.
ALTER TABLE accounts ADD COLUMN kind TEXT NOT NULL DEFAULT 'customer'
    CHECK (kind IN ('customer', 'vault', 'drawer', 'cash_over', 'cash_short', 'clearing'));
CREATE TRIGGER cash_not_negative BEFORE UPDATE OF balance_cents ON accounts
    WHEN NEW.balance_cents > 0 AND NEW.kind IN ('vault', 'drawer')
    BEGIN SELECT RAISE(ABORT, 'cash_not_negative'); END;

-- The business day: a posting carries the branch's local date, or this one if later (the day after the last
-- day closed).
ALTER TABLE settings ADD COLUMN earliest_business_date TEXT NOT NULL DEFAULT '0001-01-01';

-- The bank's accounts: no overdraft limit to speak of (10**18 cents, inside 64 bits whatever the customers hold).
INSERT INTO accounts (account_number, balance_cents, overdraft_limit_cents, own_overdraft_limit_cents, opened_at,
                      kind)
    SELECT number, 0, 1000000000000000000, 1000000000000000000, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), kind
    FROM (SELECT '@vault' AS number, 'vault' AS kind UNION ALL SELECT '@clearing', 'clearing'
          UNION ALL SELECT '@cash-over', 'cash_over' UNION ALL SELECT '@cash-short', 'cash_short');

-- The opening entry (entry 0): clearing takes the other side of all earlier history, that is minus the sum of
-- today's balances, so all balances sum to zero and the rows before this version with it. No row if they
-- already do. Its hash is journal.row_hash's, as every new row's.
INSERT INTO journal (account_number, kind, amount_cents, balance_after_cents, created_at, actor, related_id, memo,
                     hash, entry_id, business_date)
    SELECT '@clearing', kind, abs(total), -total, at, 'migration', NULL, memo,
        sha256_hex('|@clearing|' || kind || '|' || abs(total) || '|' || (-total) || '|' || at || '|migration||'
                   || memo || '|0|' || day),
        0, day
    FROM (SELECT sum(balance_cents) AS total,
                 iif(sum(balance_cents) > 0, 'debit', 'credit') AS kind,
                 strftime('%Y-%m-%dT%H:%M:%fZ', 'now') AS at, date('now') AS day,
                 'opening entry: the other side of the ledger before double entry' AS memo
          FROM accounts WHERE kind = 'customer')
    WHERE total != 0;
