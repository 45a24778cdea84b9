-- No balance past 9,999,999,999,999.99 (accounts.BALANCE_MAX_CENTS): every sum stays far inside 64 bits and
-- every balance is exactly writable as a JSON number. A trigger, since SQLite cannot add a CHECK in place;
-- raised inside the journal insert, it aborts the whole statement as the CHECK on the limit does.
CREATE TRIGGER balance_within_maximum BEFORE UPDATE OF balance_cents ON accounts
    WHEN NEW.balance_cents > 999999999999999
    BEGIN SELECT RAISE(ABORT, 'balance_within_maximum'); END;
