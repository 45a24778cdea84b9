-- The second probe's fixes (issue 19): each customer's cash by the branch's calendar day, which Close the day
-- cannot reset (large_cash.py); a copy of the identity checked, kept with the check and the report; checks made
-- when a holder is added to an account with cash that day; and the log of who read customers' records.

-- A customer account's cash, one row per cash transaction (a teller's deposit or withdrawal, or a reversal that
-- moved cash through a drawer), written by the posting's own transaction. cash_day is the branch's local date
-- at the posting (config BRANCH_TIMEZONE), whatever the business date. Rows written before this migration take
-- their business date. Append-only, like the journal it mirrors (verify checks one against the other).
CREATE TABLE customer_cash (
    entry_id INTEGER NOT NULL,
    account_number TEXT NOT NULL REFERENCES accounts(account_number),
    cash_day TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    PRIMARY KEY (entry_id, account_number)
) STRICT;
CREATE INDEX customer_cash_by_account_day ON customer_cash(account_number, cash_day, direction);
INSERT INTO customer_cash (entry_id, account_number, cash_day, direction, amount_cents)
    SELECT j.entry_id, j.account_number, j.business_date,
           CASE WHEN j.kind IN ('deposit', 'reversal_credit') THEN 'in' ELSE 'out' END, j.amount_cents
    FROM journal j
    WHERE j.kind IN ('deposit', 'withdrawal', 'reversal_credit', 'reversal_debit') AND j.entry_id IS NOT NULL
      AND j.account_number NOT LIKE '@%'
      AND EXISTS (SELECT 1 FROM journal d WHERE d.entry_id = j.entry_id AND d.account_number LIKE '@drawer-%');
CREATE TRIGGER customer_cash_no_update BEFORE UPDATE ON customer_cash
    BEGIN SELECT RAISE(ABORT, 'customer cash rows are immutable'); END;
CREATE TRIGGER customer_cash_no_delete BEFORE DELETE ON customer_cash
    BEGIN SELECT RAISE(ABORT, 'customer cash rows are immutable'); END;

-- A report entry is per customer and cash day, and keeps the customer's name and document as they were when it
-- was made (a later edit of the record does not rewrite what was reported).
ALTER TABLE large_cash RENAME COLUMN business_date TO cash_day;
ALTER TABLE large_cash ADD COLUMN full_name TEXT NOT NULL DEFAULT '';
ALTER TABLE large_cash ADD COLUMN document_type TEXT NOT NULL DEFAULT '';
ALTER TABLE large_cash ADD COLUMN document_number TEXT NOT NULL DEFAULT '';
ALTER TABLE large_cash ADD COLUMN document_country TEXT NOT NULL DEFAULT '';
UPDATE large_cash SET (full_name, document_type, document_number, document_country) =
    (SELECT full_name, document_type, document_number, document_country FROM customers c
     WHERE c.id = large_cash.customer_id);

-- A check keeps a copy of what was checked; it is of a cash transaction (entry_id) or of a holder added to an
-- account that had cash that day (holder_added_to). Rebuilt: SQLite cannot drop a NOT NULL in place.
CREATE TABLE large_cash_checks_v15 (
    id INTEGER PRIMARY KEY,
    report_id INTEGER NOT NULL REFERENCES large_cash(id),
    entry_id INTEGER,
    holder_added_to TEXT,
    present_customer_id INTEGER NOT NULL REFERENCES customers(id),
    document TEXT NOT NULL,
    full_name TEXT NOT NULL,
    document_type TEXT NOT NULL,
    document_number TEXT NOT NULL,
    document_country TEXT NOT NULL,
    checked_by TEXT NOT NULL,
    checked_at TEXT NOT NULL,
    CHECK ((entry_id IS NULL) != (holder_added_to IS NULL))
) STRICT;
INSERT INTO large_cash_checks_v15 (id, report_id, entry_id, holder_added_to, present_customer_id, document,
                                   full_name, document_type, document_number, document_country, checked_by,
                                   checked_at)
    SELECT k.id, k.report_id, k.entry_id, NULL, k.present_customer_id, k.document, c.full_name, c.document_type,
           c.document_number, c.document_country, k.checked_by, k.checked_at
    FROM large_cash_checks k JOIN customers c ON c.id = k.present_customer_id;
DROP TABLE large_cash_checks;
ALTER TABLE large_cash_checks_v15 RENAME TO large_cash_checks;
CREATE INDEX large_cash_checks_by_report ON large_cash_checks(report_id);

-- Who read which customers' records (a record viewed, a search that listed records): ids only, never the data.
CREATE TABLE customer_reads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    customer_ids TEXT NOT NULL
) STRICT;
CREATE TRIGGER customer_reads_no_update BEFORE UPDATE ON customer_reads
    BEGIN SELECT RAISE(ABORT, 'read log rows are immutable'); END;
CREATE TRIGGER customer_reads_no_delete BEFORE DELETE ON customer_reads
    BEGIN SELECT RAISE(ABORT, 'read log rows are immutable'); END;
