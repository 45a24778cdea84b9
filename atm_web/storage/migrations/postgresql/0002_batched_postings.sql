-- Deposits and withdrawals that arrive together, posted by ONE statement: each round trip between the app and
-- the database costs far more than the posting itself (every one waits for the app's Python threads), so a
-- group of postings is one call. Each posting is exactly what accounts.py's generic path does, in the same
-- order of steps: claim its Idempotency-Key (if any) or find its earlier outcome; append its journal row with
-- accounts._APPEND's hash and balance (the triggers apply it); record the outcome on the key. Each posting is
-- its journal row in a subtransaction: a refusal undoes only that row (and a refusal the key does not keep, such
-- as a balance past the maximum, gives the key up again, as the generic path's savepoint does). The caller's advisory lock is taken first, as
-- every group of writes does (storage/postgresql.py), so the chains are appended in order.
--
-- One row per posting, in the order given: outcome 'posted' (tx_id, balance), 'refused' (constraint_name: the
-- CHECK or trigger that refused it), 'replay' (tx_id and constraint_name hold the key's earlier outcome) or
-- 'key_reused' (the key was used for a different request; tx_id is that request's row, if any).
CREATE FUNCTION post_entries(
    lock_key BIGINT, numbers TEXT[], kinds TEXT[], amounts BIGINT[], deltas BIGINT[], created_ats TEXT[],
    actors TEXT[], memos TEXT[], scopes TEXT[], keys TEXT[], fingerprints TEXT[], key_nows DOUBLE PRECISION[],
    oldest DOUBLE PRECISION[])
RETURNS TABLE (entry INTEGER, outcome TEXT, tx_id BIGINT, balance BIGINT, constraint_name TEXT)
LANGUAGE plpgsql AS $$
DECLARE
    i INTEGER;
    kept_fingerprint TEXT;
    message TEXT;
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
        BEGIN  -- a subtransaction: a refusal undoes this row only
            INSERT INTO journal (account_number, kind, amount_cents, balance_after_cents, created_at, actor,
                                 related_id, memo, hash)
            SELECT numbers[i], kinds[i], amounts[i], b.after, created_ats[i], actors[i], NULL, memos[i],
                sha256_hex(coalesce(p.hash, '') || '|' || numbers[i] || '|' || kinds[i] || '|'
                    || CAST(amounts[i] AS TEXT) || '|' || CAST(b.after AS TEXT) || '|' || created_ats[i]
                    || '|' || actors[i] || '|' || '' || '|' || memos[i])
            FROM (SELECT coalesce((SELECT a.balance_cents FROM accounts a
                                   WHERE a.account_number = numbers[i]), 0) + deltas[i] AS after) AS b,
                 (SELECT (SELECT j.hash FROM journal j WHERE j.account_number = numbers[i]
                          ORDER BY j.id DESC LIMIT 1) AS hash) AS p
            RETURNING id, balance_after_cents INTO tx_id, balance;
            outcome := 'posted';
        EXCEPTION WHEN integrity_constraint_violation THEN
            GET STACKED DIAGNOSTICS constraint_name = CONSTRAINT_NAME, message = MESSAGE_TEXT;
            constraint_name := coalesce(nullif(constraint_name, ''), message);
            outcome := 'refused';
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
