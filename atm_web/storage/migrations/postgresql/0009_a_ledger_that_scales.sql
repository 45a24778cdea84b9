-- A ledger that stays fast as it grows, as SQLite's migration 0016: verification from a checkpoint (each run's
-- kind and last row, and the chain heads a run that passed leaves), the cash each cash account held when its day
-- was closed, an index of the accounts holding cash, finding a customer by part of a name, and the indexes of
-- reads every page makes.
ALTER TABLE verifications ADD COLUMN kind TEXT NOT NULL DEFAULT 'full' CHECK (kind IN ('full', 'incremental')),
    ADD COLUMN through_id BIGINT NOT NULL DEFAULT 0;
CREATE TABLE chain_heads (
    account_number TEXT PRIMARY KEY,
    last_id BIGINT NOT NULL,
    hash TEXT,
    balance_cents BIGINT NOT NULL
);

CREATE TABLE closing_cash (
    business_date TEXT NOT NULL REFERENCES closed_days(business_date),
    account_number TEXT NOT NULL REFERENCES accounts(account_number),
    balance_cents BIGINT NOT NULL CHECK (balance_cents != 0),
    PRIMARY KEY (business_date, account_number)
);
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
CREATE TRIGGER closing_cash_no_update BEFORE UPDATE ON closing_cash FOR EACH ROW
    EXECUTE FUNCTION refuse_change('closing cash');
CREATE TRIGGER closing_cash_no_delete BEFORE DELETE ON closing_cash FOR EACH ROW
    EXECUTE FUNCTION refuse_change('closing cash');
CREATE TRIGGER closing_cash_no_truncate BEFORE TRUNCATE ON closing_cash FOR EACH STATEMENT
    EXECUTE FUNCTION refuse_change('closing cash');

CREATE INDEX accounts_holding_cash ON accounts(account_number)
    WHERE kind IN ('vault', 'drawer') AND balance_cents != 0;

-- Part of a name: a trigram index (pg_trgm, which managed PostgreSQL services offer). Where the database user may
-- not add the extension, the search still works, by reading every name: the log says so at start.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'pg_trgm could not be added (%): customer search by part of a name reads every name', SQLERRM;
END $$;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX customers_by_name_part ON customers USING gin (name_folded gin_trgm_ops);
    END IF;
END $$;
CREATE INDEX customers_by_name ON customers((name_folded COLLATE "C"));

CREATE INDEX approvals_by_session ON approvals(session_id) WHERE session_id IS NOT NULL;
CREATE INDEX large_cash_by_day ON large_cash(cash_day, id);
CREATE INDEX large_cash_by_status ON large_cash(status, cash_day, id);
CREATE INDEX vault_movements_by_status ON vault_movements(status, id);
