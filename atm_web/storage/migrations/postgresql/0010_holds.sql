-- Holds (issue 23), as SQLite's migration 0017: money reserved on a customer's account now, posted once later
-- (captured) or released (voided, expired). held_cents is the sum of the account's pending holds, kept by the
-- triggers below; the CHECK balance_within_limit counts it, so two servers placing holds and withdrawals on one
-- account at once can never overspend it. A deposit never lowers balance - held, so is never refused.
ALTER TABLE accounts ADD COLUMN held_cents BIGINT NOT NULL DEFAULT 0 CHECK (held_cents >= 0);
ALTER TABLE accounts DROP CONSTRAINT balance_within_limit,
    ADD CONSTRAINT balance_within_limit CHECK (balance_cents - held_cents >= -overdraft_limit_cents);

CREATE TABLE holds (
    id BIGSERIAL PRIMARY KEY,
    account_number TEXT NOT NULL REFERENCES accounts(account_number),
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'captured', 'voided', 'expired')),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    actor TEXT NOT NULL,
    memo TEXT NOT NULL DEFAULT '',
    ended_at TEXT,
    ended_by TEXT,
    note TEXT NOT NULL DEFAULT '',
    captured_cents BIGINT CHECK (captured_cents > 0 AND captured_cents <= amount_cents),
    transaction_id BIGINT REFERENCES journal(id),
    CHECK ((status = 'pending') = (ended_at IS NULL)),
    CHECK ((status = 'captured') = (captured_cents IS NOT NULL)),
    CHECK (transaction_id IS NULL OR status = 'captured')
);
CREATE INDEX holds_pending ON holds(account_number, expires_at) WHERE status = 'pending';
CREATE INDEX holds_by_account ON holds(account_number, id);
CREATE UNIQUE INDEX holds_by_transaction ON holds(transaction_id) WHERE transaction_id IS NOT NULL;

CREATE FUNCTION holds_end_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.amount_cents <> OLD.amount_cents OR NEW.account_number <> OLD.account_number
            OR NEW.expires_at <> OLD.expires_at OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'hold_ends_once' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.status = 'captured' AND OLD.transaction_id IS NULL AND NEW.transaction_id IS NOT NULL
            AND NEW.status = 'captured' AND NEW.captured_cents = OLD.captured_cents AND NEW.ended_at = OLD.ended_at
            AND NEW.ended_by = OLD.ended_by THEN
        RETURN NEW;  -- the capture's row, linked once in the capture's transaction
    END IF;
    IF OLD.status <> 'pending' OR NEW.status = 'pending' OR NEW.transaction_id IS NOT NULL THEN
        RAISE EXCEPTION 'hold_ends_once' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    UPDATE accounts SET held_cents = held_cents - OLD.amount_cents WHERE account_number = OLD.account_number;
    RETURN NEW;
END $$;
CREATE TRIGGER holds_end_once BEFORE UPDATE ON holds FOR EACH ROW EXECUTE FUNCTION holds_end_once();
CREATE TRIGGER holds_no_delete BEFORE DELETE ON holds FOR EACH ROW EXECUTE FUNCTION refuse_change('holds');
CREATE TRIGGER holds_no_truncate BEFORE TRUNCATE ON holds FOR EACH STATEMENT EXECUTE FUNCTION refuse_change('holds');

CREATE FUNCTION holds_placed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE accounts SET held_cents = held_cents + NEW.amount_cents WHERE account_number = NEW.account_number;
    RETURN NULL;
END $$;
CREATE TRIGGER holds_placed AFTER INSERT ON holds FOR EACH ROW WHEN (NEW.status = 'pending')
    EXECUTE FUNCTION holds_placed();

-- A hold past its expiry time no longer counts: the first posting that takes money out of the account records
-- it expired, in the posting's own statement, at the posting's time, before the limit is checked. A hold ends
-- once (holds_end_once), as SQLite's trigger says.
CREATE FUNCTION journal_expires_holds() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT held_cents FROM accounts WHERE account_number = NEW.account_number) > 0 THEN
        UPDATE holds SET status = 'expired', ended_at = NEW.created_at, ended_by = 'expiry'
            WHERE account_number = NEW.account_number AND status = 'pending' AND expires_at <= NEW.created_at;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER journal_expires_holds BEFORE INSERT ON journal FOR EACH ROW
    WHEN (NEW.kind IN ('withdrawal', 'transfer_out', 'reversal_debit')) EXECUTE FUNCTION journal_expires_holds();

-- A limit that follows MAX_DEBT shrinks back towards it as the account's debt (counting its holds) shrinks.
CREATE OR REPLACE FUNCTION journal_applies_to_balance() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delta BIGINT := CASE WHEN NEW.kind IN ('deposit', 'transfer_in', 'reversal_credit', 'credit')
                         THEN NEW.amount_cents ELSE -NEW.amount_cents END;
    after BIGINT;
BEGIN
    UPDATE accounts SET
        balance_cents = balance_cents + delta,
        overdraft_limit_cents = CASE WHEN own_overdraft_limit_cents IS NOT NULL THEN overdraft_limit_cents
            ELSE GREATEST((SELECT max_debt_cents FROM settings),
                          LEAST(overdraft_limit_cents, held_cents - (balance_cents + delta))) END
        WHERE account_number = NEW.account_number
        RETURNING balance_cents INTO after;
    IF after IS DISTINCT FROM NEW.balance_after_cents THEN
        RAISE EXCEPTION 'journal balance_after does not match the account balance'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;

-- An idempotent request's outcome may be a hold (placed, captured, voided): a retry answers from it.
ALTER TABLE idempotency_keys ADD COLUMN hold_id BIGINT REFERENCES holds(id);
