-- Holds (issue 23): money reserved on a customer's account now, posted once later (captured), or released
-- (voided, expired). A pending hold counts against what the account may still take out: the account's held_cents
-- is the sum of its pending holds, kept by the triggers below in the same statement that places or ends a hold,
-- and every change that lowers balance - held is refused below the overdraft limit (balance_within_limit: the
-- name the journal's refusals already read as insufficient funds). A deposit never lowers it, so is never refused.
ALTER TABLE accounts ADD COLUMN held_cents INTEGER NOT NULL DEFAULT 0 CHECK (held_cents >= 0);

CREATE TABLE holds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_number TEXT NOT NULL REFERENCES accounts(account_number),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'captured', 'voided', 'expired')),
    created_at TEXT NOT NULL,  -- journal_time text: compared as text with a posting's created_at
    expires_at TEXT NOT NULL,
    actor TEXT NOT NULL,
    memo TEXT NOT NULL DEFAULT '',
    ended_at TEXT,
    ended_by TEXT,
    note TEXT NOT NULL DEFAULT '',  -- a supervisor's reason for releasing it
    captured_cents INTEGER CHECK (captured_cents > 0 AND captured_cents <= amount_cents),
    transaction_id INTEGER REFERENCES journal(id),  -- the capture's row on the customer's account
    CHECK ((status = 'pending') = (ended_at IS NULL)),
    CHECK ((status = 'captured') = (captured_cents IS NOT NULL)),
    CHECK (transaction_id IS NULL OR status = 'captured')
) STRICT;
CREATE INDEX holds_pending ON holds(account_number, expires_at) WHERE status = 'pending';
CREATE INDEX holds_by_account ON holds(account_number, id);
CREATE UNIQUE INDEX holds_by_transaction ON holds(transaction_id) WHERE transaction_id IS NOT NULL;

-- A hold ends once: a pending hold's only change is to its end, and an ended one never changes again, but for a
-- capture's row linked to it once, in the capture's own transaction (the hold is released before the row is
-- written, so that the row fits the limit the hold kept free for it).
CREATE TRIGGER holds_end_once BEFORE UPDATE ON holds
    WHEN NEW.amount_cents != OLD.amount_cents OR NEW.account_number != OLD.account_number
         OR NEW.expires_at != OLD.expires_at OR NEW.created_at != OLD.created_at
         OR CASE WHEN OLD.status = 'pending' THEN NEW.status = 'pending' OR NEW.transaction_id IS NOT NULL
                 ELSE NOT (OLD.status = 'captured' AND OLD.transaction_id IS NULL AND NEW.transaction_id IS NOT NULL
                           AND NEW.status = 'captured' AND NEW.captured_cents = OLD.captured_cents
                           AND NEW.ended_at = OLD.ended_at AND NEW.ended_by = OLD.ended_by)
            END
    BEGIN SELECT RAISE(ABORT, 'hold_ends_once'); END;
CREATE TRIGGER holds_no_delete BEFORE DELETE ON holds
    BEGIN SELECT RAISE(ABORT, 'holds are kept'); END;

-- held_cents follows the pending holds.
CREATE TRIGGER holds_placed AFTER INSERT ON holds WHEN NEW.status = 'pending'
    BEGIN UPDATE accounts SET held_cents = held_cents + NEW.amount_cents WHERE account_number = NEW.account_number;
    END;
CREATE TRIGGER holds_ended AFTER UPDATE OF status ON holds WHEN OLD.status = 'pending' AND NEW.status != 'pending'
    BEGIN UPDATE accounts SET held_cents = held_cents - OLD.amount_cents WHERE account_number = OLD.account_number;
    END;

-- The overdraft limit counts the holds (PostgreSQL: the CHECK balance_within_limit itself).
CREATE TRIGGER holds_within_limit BEFORE UPDATE OF balance_cents, held_cents, overdraft_limit_cents ON accounts
    WHEN NEW.balance_cents - NEW.held_cents < -NEW.overdraft_limit_cents
    BEGIN SELECT RAISE(ABORT, 'balance_within_limit'); END;

-- A hold past its expiry time no longer counts: the first posting that takes money out of the account records
-- it expired, in the posting's own statement, at the posting's time (the app's clock), before the limit is
-- checked. (Reads leave out holds past their time on their own: holds.py.)
CREATE TRIGGER journal_expires_holds BEFORE INSERT ON journal
    WHEN NEW.kind IN ('withdrawal', 'transfer_out', 'reversal_debit')
         AND (SELECT held_cents FROM accounts WHERE account_number = NEW.account_number) > 0
    BEGIN UPDATE holds SET status = 'expired', ended_at = NEW.created_at, ended_by = 'expiry'
          WHERE account_number = NEW.account_number AND status = 'pending' AND expires_at <= NEW.created_at;
    END;

-- A limit that follows MAX_DEBT shrinks back towards it as the account's debt (counting its holds) shrinks.
DROP TRIGGER journal_applies_to_balance;
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
                held_cents - (balance_cents + iif(NEW.kind IN ('deposit', 'transfer_in', 'reversal_credit', 'credit'),
                                                  NEW.amount_cents, -NEW.amount_cents)))))
        WHERE account_number = NEW.account_number;
    SELECT RAISE(ABORT, 'journal balance_after does not match the account balance')
        WHERE (SELECT balance_cents FROM accounts WHERE account_number = NEW.account_number)
              != NEW.balance_after_cents;
END;

-- An idempotent request's outcome may be a hold (placed, captured, voided): a retry answers from it.
ALTER TABLE idempotency_keys ADD COLUMN hold_id INTEGER REFERENCES holds(id);
