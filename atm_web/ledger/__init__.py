"""The ledger: journal rows and balances, postings, idempotency, reversals and verification."""
