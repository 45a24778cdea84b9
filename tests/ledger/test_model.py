"""Model test: hypothesis drives the ledger against a plain Python model of the bank, on each engine; after
every step the balances, limits and journals must be equal."""
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from atm_web.ledger import accounts, reversals, verification
from atm_web.ledger.accounts import LEDGER_STARTUP
from atm_web.ledger.refusals import CannotReverse, InsufficientFunds, LimitBelowDebt, UnknownAccount
from atm_web.serving import aio
from atm_web.storage.postgresql import PostgresDatabase
from atm_web.storage.sqlite import SQLiteDatabase

from conftest import Raw, drop_postgres_database, new_postgres_database, require_postgres

MAX_DEBT = 10_000
NUMBERS = ["M1", "M2"]
amounts = st.integers(min_value=1, max_value=30_000)
CREDIT = {"deposit", "transfer_in", "reversal_credit"}
REVERSING = {"deposit": "reversal_debit", "transfer_in": "reversal_debit", "withdrawal": "reversal_credit",
             "transfer_out": "reversal_credit"}


class Bank(RuleBasedStateMachine):
    """Each example gets a new, empty ledger of the engine (a SQLite file, or a PostgreSQL database)."""
    engine = "sqlite"

    def __init__(self):
        super().__init__()
        if self.engine == "sqlite":
            self.dir = tempfile.TemporaryDirectory()
            self.location = str(Path(self.dir.name) / "model.db")
            self.db = SQLiteDatabase(self.location, MAX_DEBT, startup=LEDGER_STARTUP)
        else:
            self.location = new_postgres_database()
            self.db = PostgresDatabase(self.location, MAX_DEBT, pool_size=2, startup=LEDGER_STARTUP)
        self.raw = Raw(self.location)
        aio.run(self.db.open())
        self.balance, self.limit, self.own = {}, {}, {}
        self.journal = []        # (id, account, kind, amount, related) as the model expects them
        self.reversed = set()

    def teardown(self):
        assert aio.run(verification.verify(self.db))[0] == []
        aio.run(self.db.close())
        if self.engine == "sqlite":
            self.dir.cleanup()
        else:
            drop_postgres_database(self.location)

    # the model

    def _apply(self, number, kind, amount, tx, related=None):
        """Record one row the model predicts, checked against what the ledger returned."""
        signed = amount if kind in CREDIT else -amount
        new = self.balance.get(number, 0) + signed
        limit = self.limit.get(number, MAX_DEBT)
        if self.own.get(number) is None:
            limit = max(MAX_DEBT, min(limit, -new))
        self.balance[number], self.limit[number] = new, limit
        assert (tx.account_number, tx.kind, tx.amount_cents, tx.balance_after_cents, tx.related_id) == \
            (number, kind, amount, new, related)
        self.journal.append((tx.id, number, kind, amount, related))

    def _fits(self, number, amount):
        return self.balance.get(number, 0) - amount >= -self.limit.get(number, MAX_DEBT)

    # the rules

    @rule(number=st.sampled_from(NUMBERS), amount=amounts)
    def deposit(self, number, amount):
        self._apply(number, "deposit", amount, aio.run(accounts.deposit(self.db, number, amount, "m")))

    @rule(number=st.sampled_from(NUMBERS), amount=amounts)
    def withdraw(self, number, amount):
        if self._fits(number, amount):
            self._apply(number, "withdrawal", amount, aio.run(accounts.withdraw(self.db, number, amount, "m")))
        else:
            with pytest.raises(InsufficientFunds):
                aio.run(accounts.withdraw(self.db, number, amount, "m"))

    @rule(pair=st.permutations(NUMBERS), amount=amounts)
    def transfer(self, pair, amount):
        source, target = pair[0], pair[1]
        if source not in self.balance:
            with pytest.raises(UnknownAccount):
                aio.run(accounts.transfer(self.db, source, target, amount, "m"))
        elif not self._fits(source, amount):
            with pytest.raises(InsufficientFunds):
                aio.run(accounts.transfer(self.db, source, target, amount, "m"))
        else:
            debit, credit = aio.run(accounts.transfer(self.db, source, target, amount, "m"))
            self._apply(source, "transfer_out", amount, debit)
            self._apply(target, "transfer_in", amount, credit, related=debit.id)

    @precondition(lambda self: self.journal)
    @rule(data=st.data())
    def reverse(self, data):
        tx_id, number, kind, amount, related = data.draw(st.sampled_from(self.journal))
        legs = [(tx_id, number, kind, amount)]
        if kind.startswith("transfer"):
            legs += [(i, n, k, a) for i, n, k, a, r in self.journal
                     if k.startswith("transfer") and i != tx_id and (i == related or r == tx_id)]
        if kind not in REVERSING:
            with pytest.raises(CannotReverse):
                aio.run(reversals.reverse(self.db, tx_id, "model", "m"))
            return
        if any(leg[0] in self.reversed for leg in legs):  # asked again with the same reason: the first answer
            again = aio.run(reversals.reverse(self.db, tx_id, "model", "m"))
            assert again.replayed and {row.related_id for row in again.rows} == {leg[0] for leg in legs}
            return
        legs.sort(key=lambda leg: leg[2] in CREDIT, reverse=True)  # the ledger debits first
        if any(REVERSING[k] == "reversal_debit" and not self._fits(n, a) for _, n, k, a in legs):
            with pytest.raises(InsufficientFunds):
                aio.run(reversals.reverse(self.db, tx_id, "model", "m"))
            return
        rows = aio.run(reversals.reverse(self.db, tx_id, "model", "m")).rows
        by_original = {row.related_id: row for row in rows}
        for leg_id, n, k, a in legs:
            self._apply(n, REVERSING[k], a, by_original[leg_id], related=leg_id)
            self.reversed.add(leg_id)

    @rule(number=st.sampled_from(NUMBERS), limit=st.one_of(st.none(), st.integers(0, 40_000)))
    def set_limit(self, number, limit):
        set_it = lambda: aio.run(accounts.set_overdraft_limit(self.db, number, limit, "m"))  # noqa: E731
        if number not in self.balance:
            with pytest.raises(UnknownAccount):
                set_it()
        elif limit is not None and self.balance[number] < -limit:
            with pytest.raises(LimitBelowDebt):
                set_it()
        else:
            account = set_it()
            self.own[number] = limit
            self.limit[number] = limit if limit is not None else max(MAX_DEBT, -self.balance[number])
            assert account.overdraft_limit_cents == self.limit[number]

    # after every step

    @invariant()
    def ledger_equals_model(self):
        customers = "WHERE account_number NOT LIKE '@%'"  # the bank's side: tests/test_cash_model.py models it
        rows = self.raw.rows(f"SELECT account_number, balance_cents, overdraft_limit_cents FROM accounts {customers}")
        journal = self.raw.rows(f"SELECT id, account_number, kind, amount_cents, related_id FROM journal {customers} "
                                "ORDER BY id")
        assert {n: (b, lim) for n, b, lim in rows} == {n: (self.balance[n], self.limit[n]) for n in self.balance}
        assert journal == self.journal


class BankOnPostgres(Bank):
    engine = "postgresql"


pytestmark = pytest.mark.slow  # hundreds of random runs: make test, not make check
MODEL_SETTINGS = settings(max_examples=100, stateful_step_count=40, deadline=None)
Bank.TestCase.settings = MODEL_SETTINGS
BankOnPostgres.TestCase.settings = MODEL_SETTINGS
TestBankModelSQLite = Bank.TestCase


class TestBankModelPostgres(BankOnPostgres.TestCase):
    def setUp(self):
        require_postgres()
