-- A journal row is reversed at most once: one reversal row may point at it.
CREATE UNIQUE INDEX journal_one_reversal ON journal(related_id)
    WHERE kind IN ('reversal_credit', 'reversal_debit');
