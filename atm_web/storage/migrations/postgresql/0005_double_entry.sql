-- Double entry (issue 12), as SQLite's migration 0012: the kinds 'debit' and 'credit' (the bank's side of a
-- posting), entry_id (the transaction a row belongs to; rows written before this version have none and are
-- hashed as they were), business_date; what an account is, cash never below zero notes; the bank's accounts;
-- the opening entry; and post_entries posting both sides of each deposit or withdrawal.
ALTER TABLE journal DROP CONSTRAINT journal_kind_check;
ALTER TABLE journal ADD CONSTRAINT journal_kind_check CHECK (kind IN ('deposit', 'withdrawal', 'transfer_in',
    'transfer_out', 'reversal_credit', 'reversal_debit', 'debit', 'credit'));
ALTER TABLE journal ADD COLUMN entry_id BIGINT;
ALTER TABLE journal ADD COLUMN business_date TEXT;
ALTER TABLE journal ADD CONSTRAINT journal_entry_has_a_date CHECK ((entry_id IS NULL) = (business_date IS NULL));
CREATE INDEX journal_by_entry ON journal(entry_id);
CREATE INDEX journal_by_business_date ON journal(business_date, id);

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
                          LEAST(overdraft_limit_cents, -(balance_cents + delta))) END
        WHERE account_number = NEW.account_number
        RETURNING balance_cents INTO after;
    IF after IS DISTINCT FROM NEW.balance_after_cents THEN
        RAISE EXCEPTION 'journal balance_after does not match the account balance'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;

ALTER TABLE accounts ADD COLUMN kind TEXT NOT NULL DEFAULT 'customer'
    CHECK (kind IN ('customer', 'vault', 'drawer', 'cash_over', 'cash_short', 'clearing'));
ALTER TABLE accounts ADD CONSTRAINT cash_not_negative CHECK (kind NOT IN ('vault', 'drawer') OR balance_cents <= 0);

ALTER TABLE settings ADD COLUMN earliest_business_date TEXT NOT NULL DEFAULT '0001-01-01';

INSERT INTO accounts (account_number, balance_cents, overdraft_limit_cents, own_overdraft_limit_cents, opened_at,
                      kind)
    SELECT number, 0, 1000000000000000000, 1000000000000000000,
           to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), kind
    FROM (VALUES ('@vault', 'vault'), ('@clearing', 'clearing'), ('@cash-over', 'cash_over'),
                 ('@cash-short', 'cash_short')) AS bank(number, kind);

INSERT INTO journal (account_number, kind, amount_cents, balance_after_cents, created_at, actor, related_id, memo,
                     hash, entry_id, business_date)
    SELECT '@clearing', kind, abs(total), -total, at, 'migration', NULL, memo,
        sha256_hex('|@clearing|' || kind || '|' || abs(total) || '|' || (-total) || '|' || at || '|migration||'
                   || memo || '|0|' || day),
        0, day
    FROM (SELECT sum(balance_cents) AS total,
                 CASE WHEN sum(balance_cents) > 0 THEN 'debit' ELSE 'credit' END AS kind,
                 to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at,
                 to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,
                 'opening entry: the other side of the ledger before double entry' AS memo
          FROM accounts WHERE kind = 'customer') AS opening
    WHERE total IS NOT NULL AND total <> 0;

-- post_entries as before (0002), each posting now a transaction of two rows: the customer's, then the bank's
-- side on counters[i] (clearing for the API, a drawer for a teller's cash), of the opposite sign, both in one
-- subtransaction, so a refusal of either (the customer's limit, the drawer's cash) undoes both. Each gets the
-- next entry number and the business date (accounts._APPEND's, in the same text).
DROP FUNCTION post_authorised_entries(BIGINT[], BIGINT, TEXT[], TEXT[], BIGINT[], BIGINT[], TEXT[], TEXT[], TEXT[],
                                      TEXT[], TEXT[], TEXT[], DOUBLE PRECISION[], DOUBLE PRECISION[]);
DROP FUNCTION post_entries(BIGINT, TEXT[], TEXT[], BIGINT[], BIGINT[], TEXT[], TEXT[], TEXT[], TEXT[], TEXT[],
                           TEXT[], DOUBLE PRECISION[], DOUBLE PRECISION[]);

CREATE FUNCTION post_entries(
    lock_key BIGINT, numbers TEXT[], kinds TEXT[], amounts BIGINT[], deltas BIGINT[], created_ats TEXT[],
    actors TEXT[], memos TEXT[], counters TEXT[], counter_memos TEXT[], todays TEXT[], scopes TEXT[], keys TEXT[],
    fingerprints TEXT[], key_nows DOUBLE PRECISION[], oldest DOUBLE PRECISION[])
RETURNS TABLE (entry INTEGER, outcome TEXT, tx_id BIGINT, balance BIGINT, constraint_name TEXT)
LANGUAGE plpgsql AS $$
DECLARE
    i INTEGER;
    kept_fingerprint TEXT;
    message TEXT;
    this_entry BIGINT;
    day TEXT;
    counter_kind TEXT;
    counter_after BIGINT;
BEGIN
    PERFORM set_config('lock_timeout', '5s', true);
    PERFORM pg_advisory_xact_lock(lock_key);
    FOR i IN 1 .. coalesce(array_length(numbers, 1), 0) LOOP
        entry := i;
        outcome := NULL;
        tx_id := NULL;
        balance := NULL;
        constraint_name := NULL;
        IF keys[i] IS NOT NULL THEN
            INSERT INTO idempotency_keys AS k (scope, key, fingerprint, transaction_id, refusal, created_at)
                VALUES (scopes[i], keys[i], fingerprints[i], NULL, NULL, key_nows[i])
                ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint,
                    transaction_id = NULL, refusal = NULL, created_at = excluded.created_at
                WHERE k.created_at < oldest[i];
            IF NOT FOUND THEN
                SELECT k.fingerprint, k.transaction_id, k.refusal INTO kept_fingerprint, tx_id, constraint_name
                    FROM idempotency_keys k WHERE k.scope = scopes[i] AND k.key = keys[i];
                outcome := CASE WHEN kept_fingerprint = fingerprints[i] THEN 'replay' ELSE 'key_reused' END;
                RETURN NEXT;
                CONTINUE;
            END IF;
        END IF;
        BEGIN  -- a subtransaction: a refusal undoes this transaction's rows only
            SELECT coalesce(max(j.entry_id), 0) + 1 INTO this_entry FROM journal j;
            SELECT CASE WHEN todays[i] >= s.earliest_business_date THEN todays[i] ELSE s.earliest_business_date END
                INTO day FROM settings s;
            INSERT INTO journal (account_number, kind, amount_cents, balance_after_cents, created_at, actor,
                                 related_id, memo, entry_id, business_date, hash)
            SELECT numbers[i], kinds[i], amounts[i], b.after, created_ats[i], actors[i], NULL, memos[i],
                this_entry, day,
                sha256_hex(coalesce(p.hash, '') || '|' || numbers[i] || '|' || kinds[i] || '|'
                    || CAST(amounts[i] AS TEXT) || '|' || CAST(b.after AS TEXT) || '|' || created_ats[i]
                    || '|' || actors[i] || '|' || '' || '|' || memos[i] || '|' || CAST(this_entry AS TEXT)
                    || '|' || day)
            FROM (SELECT coalesce((SELECT a.balance_cents FROM accounts a
                                   WHERE a.account_number = numbers[i]), 0) + deltas[i] AS after) AS b,
                 (SELECT (SELECT j.hash FROM journal j WHERE j.account_number = numbers[i]
                          ORDER BY j.id DESC LIMIT 1) AS hash) AS p
            RETURNING id, balance_after_cents INTO tx_id, balance;
            counter_kind := CASE WHEN deltas[i] > 0 THEN 'debit' ELSE 'credit' END;
            INSERT INTO journal (account_number, kind, amount_cents, balance_after_cents, created_at, actor,
                                 related_id, memo, entry_id, business_date, hash)
            SELECT counters[i], counter_kind, amounts[i], b.after, created_ats[i], actors[i], NULL,
                counter_memos[i], this_entry, day,
                sha256_hex(coalesce(p.hash, '') || '|' || counters[i] || '|' || counter_kind || '|'
                    || CAST(amounts[i] AS TEXT) || '|' || CAST(b.after AS TEXT) || '|' || created_ats[i]
                    || '|' || actors[i] || '|' || '' || '|' || counter_memos[i] || '|' || CAST(this_entry AS TEXT)
                    || '|' || day)
            FROM (SELECT coalesce((SELECT a.balance_cents FROM accounts a
                                   WHERE a.account_number = counters[i]), 0) - deltas[i] AS after) AS b,
                 (SELECT (SELECT j.hash FROM journal j WHERE j.account_number = counters[i]
                          ORDER BY j.id DESC LIMIT 1) AS hash) AS p
            RETURNING balance_after_cents INTO counter_after;
            outcome := 'posted';
        EXCEPTION WHEN integrity_constraint_violation THEN
            GET STACKED DIAGNOSTICS constraint_name = CONSTRAINT_NAME, message = MESSAGE_TEXT;
            constraint_name := coalesce(nullif(constraint_name, ''), message);
            outcome := 'refused';
            tx_id := NULL;
            balance := NULL;
        END;
        IF keys[i] IS NOT NULL THEN
            IF outcome = 'refused' AND constraint_name <> 'balance_within_limit' THEN
                DELETE FROM idempotency_keys WHERE scope = scopes[i] AND key = keys[i];  -- not an outcome to keep
            ELSE
                UPDATE idempotency_keys SET transaction_id = post_entries.tx_id,
                    refusal = CASE WHEN outcome = 'refused' THEN 'insufficient_funds' END
                    WHERE scope = scopes[i] AND key = keys[i];
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;

CREATE FUNCTION post_authorised_entries(
    generations BIGINT[], lock_key BIGINT, numbers TEXT[], kinds TEXT[], amounts BIGINT[], deltas BIGINT[],
    created_ats TEXT[], actors TEXT[], memos TEXT[], counters TEXT[], counter_memos TEXT[], todays TEXT[],
    scopes TEXT[], keys TEXT[], fingerprints TEXT[], key_nows DOUBLE PRECISION[], oldest DOUBLE PRECISION[])
RETURNS TABLE (entry INTEGER, outcome TEXT, tx_id BIGINT, balance BIGINT, constraint_name TEXT)
LANGUAGE plpgsql AS $$
DECLARE
    current_generation BIGINT;
BEGIN
    PERFORM set_config('lock_timeout', '5s', true);
    PERFORM pg_advisory_xact_lock(lock_key);
    SELECT r.generation INTO current_generation FROM token_revocations r;
    IF EXISTS (SELECT 1 FROM unnest(generations) g WHERE g <> current_generation) THEN
        RETURN QUERY SELECT i, CASE WHEN generations[i] <> current_generation THEN 'stale' ELSE 'retry' END,
                            NULL::BIGINT, NULL::BIGINT, NULL::TEXT
                     FROM generate_subscripts(numbers, 1) i;
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM post_entries(lock_key, numbers, kinds, amounts, deltas, created_ats, actors, memos,
                                            counters, counter_memos, todays, scopes, keys, fingerprints, key_nows,
                                            oldest);
END $$;
