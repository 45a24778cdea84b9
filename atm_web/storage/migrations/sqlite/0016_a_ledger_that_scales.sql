-- A ledger that stays fast as it grows (issue 22): costs that follow the account or the day, never the history.

-- Verification from a checkpoint: each run says which kind it was and the last journal row it covered; a run
-- that passed leaves each account's chain head (its last row checked: id, hash, balance after), and the next
-- default run checks only the rows after the checkpoint, each account's from its head (verification.py).
-- Runs recorded before this migration have no heads: the next one checks everything.
ALTER TABLE verifications ADD COLUMN kind TEXT NOT NULL DEFAULT 'full' CHECK (kind IN ('full', 'incremental'));
ALTER TABLE verifications ADD COLUMN through_id INTEGER NOT NULL DEFAULT 0;
CREATE TABLE chain_heads (
    account_number TEXT PRIMARY KEY,
    last_id INTEGER NOT NULL,
    hash TEXT,
    balance_cents INTEGER NOT NULL
) STRICT;

-- What each cash account (the vault, a drawer) held when its day was closed, kept with the day's digest: a day's
-- report opens from the day before's close instead of summing history. Only accounts holding cash are listed
-- (every drawer is closed, so empty, when a day closes). Days closed before this migration get theirs from the
-- journal: each cash account's running sum at the end of each closed day.
CREATE TABLE closing_cash (
    business_date TEXT NOT NULL REFERENCES closed_days(business_date),
    account_number TEXT NOT NULL REFERENCES accounts(account_number),
    balance_cents INTEGER NOT NULL CHECK (balance_cents != 0),
    PRIMARY KEY (business_date, account_number)
) STRICT;
WITH per_day AS (
    SELECT account_number, business_date,
           sum(CASE WHEN kind IN ('credit', 'deposit', 'reversal_credit', 'transfer_in') THEN amount_cents
                    ELSE -amount_cents END) AS moved
    FROM journal
    WHERE account_number IN (SELECT account_number FROM accounts WHERE kind IN ('vault', 'drawer'))
      AND business_date IS NOT NULL
    GROUP BY account_number, business_date),
running AS (
    SELECT account_number, business_date,
           sum(moved) OVER (PARTITION BY account_number ORDER BY business_date) AS balance,
           lead(business_date) OVER (PARTITION BY account_number ORDER BY business_date) AS next_date
    FROM per_day)
INSERT INTO closing_cash (business_date, account_number, balance_cents)
    SELECT d.business_date, r.account_number, r.balance
    FROM closed_days d JOIN running r
      ON r.business_date <= d.business_date AND (r.next_date IS NULL OR r.next_date > d.business_date)
    WHERE r.balance != 0;
CREATE TRIGGER closing_cash_no_update BEFORE UPDATE ON closing_cash
    BEGIN SELECT RAISE(ABORT, 'closing cash rows are immutable'); END;
CREATE TRIGGER closing_cash_no_delete BEFORE DELETE ON closing_cash
    BEGIN SELECT RAISE(ABORT, 'closing cash rows are immutable'); END;

-- The cash the branch holds now (the vault and each open drawer): the accounts of cash holding any, found without
-- reading the others (a drawer account per session ever opened, a customer account per customer).
CREATE INDEX accounts_holding_cash ON accounts(account_number)
    WHERE kind IN ('vault', 'drawer') AND balance_cents != 0;

-- Finding a customer by part of a name: a trigram index (FTS5), kept in step with the records by triggers; a
-- text of one or two characters finds the names that begin with it, through an ordinary index.
CREATE VIRTUAL TABLE customer_names USING fts5(name_folded, content='customers', content_rowid='id',
                                               tokenize='trigram');
INSERT INTO customer_names (customer_names) VALUES ('rebuild');
CREATE TRIGGER customer_names_add AFTER INSERT ON customers BEGIN
    INSERT INTO customer_names (rowid, name_folded) VALUES (new.id, new.name_folded);
END;
CREATE TRIGGER customer_names_change AFTER UPDATE OF name_folded ON customers BEGIN
    INSERT INTO customer_names (customer_names, rowid, name_folded) VALUES ('delete', old.id, old.name_folded);
    INSERT INTO customer_names (rowid, name_folded) VALUES (new.id, new.name_folded);
END;
CREATE TRIGGER customer_names_remove AFTER DELETE ON customers BEGIN
    INSERT INTO customer_names (customer_names, rowid, name_folded) VALUES ('delete', old.id, old.name_folded);
END;
CREATE INDEX customers_by_name ON customers(name_folded);

-- Reads that every page makes, each through an index of its own.
CREATE INDEX approvals_by_session ON approvals(session_id) WHERE session_id IS NOT NULL;
CREATE INDEX large_cash_by_day ON large_cash(cash_day, id);
CREATE INDEX large_cash_by_status ON large_cash(status, cash_day, id);
CREATE INDEX vault_movements_by_status ON vault_movements(status, id);
