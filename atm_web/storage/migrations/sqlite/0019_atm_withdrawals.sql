-- Cash paid out at an ATM in two phases (issue 25). A withdrawal places a hold on the customer's account and
-- reserves the notes chosen from the cassettes, in one transaction; the dispenser's result then captures the hold
-- for what was paid (posted against the ATM's cash account, the notes taken out of the cassettes) or voids it
-- (failed: the notes stay; retracted: the notes go to the retract bin), exactly once. A withdrawal whose result
-- never comes ends expired with its hold; the next replenishment's blind count finds where its cash is.
ALTER TABLE atm_cassettes ADD COLUMN reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= notes);

CREATE TABLE atm_withdrawals (
    id INTEGER PRIMARY KEY,
    atm_id INTEGER NOT NULL REFERENCES atms(id),
    trace INTEGER NOT NULL,  -- the ATM's journal number of the event that held it (on the receipt)
    card_id INTEGER NOT NULL REFERENCES cards(id),
    account_number TEXT NOT NULL REFERENCES accounts(account_number),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    notes TEXT NOT NULL,  -- JSON: {"position": notes} chosen from the cassettes
    hold_id INTEGER NOT NULL UNIQUE REFERENCES holds(id),
    cash_day TEXT NOT NULL,  -- the branch's calendar date when it was held: the card's daily limit's day
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'dispensed', 'partial', 'failed', 'retracted', 'expired')),
    paid_cents INTEGER CHECK (paid_cents >= 0 AND paid_cents <= amount_cents),
    created_at TEXT NOT NULL,
    ended_at TEXT,
    ended_by TEXT,
    CHECK ((status = 'pending') = (ended_at IS NULL)),
    CHECK ((status IN ('dispensed', 'partial')) = (paid_cents IS NOT NULL AND paid_cents > 0)),
    UNIQUE (atm_id, trace)
) STRICT;
CREATE INDEX atm_withdrawals_by_card_day ON atm_withdrawals(card_id, cash_day);
CREATE INDEX atm_withdrawals_pending ON atm_withdrawals(atm_id) WHERE status = 'pending';
CREATE TRIGGER atm_withdrawals_no_delete BEFORE DELETE ON atm_withdrawals
    BEGIN SELECT RAISE(ABORT, 'atm withdrawals are kept'); END;
CREATE TRIGGER atm_withdrawals_end_once BEFORE UPDATE ON atm_withdrawals WHEN OLD.status != 'pending'
    BEGIN SELECT RAISE(ABORT, 'atm_withdrawal_ended'); END;
