"""Model test: hypothesis drives the ledger against a plain Python model of the bank, on each engine; after
every step the balances, limits, holds and journals must be equal. The model has its own clock, in whole seconds,
that every call is given (holds expire on it)."""
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from atm_web.ledger import accounts, holds, reversals, verification
from atm_web.ledger.accounts import LEDGER_STARTUP
from atm_web.ledger.refusals import (
    AccountNotFound,
    CannotReverse,
    CaptureAboveHold,
    HoldEnded,
    InsufficientFunds,
    LimitBelowDebt,
    UnknownAccount,
)
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
        self.now = float(int(time.time()))  # whole seconds: expiry times compare exactly
        self.holds = {}  # id: [account, amount, expires at, status as the database records it]

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
        if self.own.get(number) is None:  # shrinks back towards MAX_DEBT as the debt, holds counted, shrinks
            limit = max(MAX_DEBT, min(limit, self._held(number) - new))
        self.balance[number], self.limit[number] = new, limit
        assert (tx.account_number, tx.kind, tx.amount_cents, tx.balance_after_cents, tx.related_id) == \
            (number, kind, amount, new, related)
        self.journal.append((tx.id, number, kind, amount, related))

    def _fits(self, number, amount):
        """Whether taking amount out keeps the account within its limit, counting the holds not past their time."""
        return self.balance.get(number, 0) - self._held_now(number) - amount >= -self.limit.get(number, MAX_DEBT)

    def _held(self, number):
        """What the database holds on the account: its holds recorded pending."""
        return sum(h[1] for h in self.holds.values() if h[0] == number and h[3] == "pending")

    def _held_now(self, number):
        """What counts now: the pending holds not past their time."""
        return sum(h[1] for h in self.holds.values() if h[0] == number and h[3] == "pending" and h[2] > self.now)

    def _expire(self, number):
        """A write on the account that succeeded records its holds past their time expired."""
        for h in self.holds.values():
            if h[0] == number and h[3] == "pending" and h[2] <= self.now:
                h[3] = "expired"

    def _status(self, hold_id):
        _, _, expires, status = self.holds[hold_id]
        return "expired" if status == "pending" and expires <= self.now else status

    # the rules

    @rule(number=st.sampled_from(NUMBERS), amount=amounts)
    def deposit(self, number, amount):
        self._apply(number, "deposit", amount, aio.run(accounts.deposit(self.db, number, amount, "m", now=self.now)))

    @rule(number=st.sampled_from(NUMBERS), amount=amounts)
    def withdraw(self, number, amount):
        if self._fits(number, amount):
            tx = aio.run(accounts.withdraw(self.db, number, amount, "m", now=self.now))
            self._expire(number)
            self._apply(number, "withdrawal", amount, tx)
        else:
            with pytest.raises(InsufficientFunds):
                aio.run(accounts.withdraw(self.db, number, amount, "m", now=self.now))

    @rule(pair=st.permutations(NUMBERS), amount=amounts)
    def transfer(self, pair, amount):
        source, target = pair[0], pair[1]
        move = lambda: aio.run(accounts.transfer(self.db, source, target, amount, "m", now=self.now))  # noqa: E731
        if source not in self.balance:
            with pytest.raises(UnknownAccount):
                move()
        elif not self._fits(source, amount):
            with pytest.raises(InsufficientFunds):
                move()
        else:
            debit, credit = move()
            self._expire(source)
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
        reverse = lambda: aio.run(reversals.reverse(self.db, tx_id, "model", "m", now=self.now))  # noqa: E731
        if kind not in REVERSING:
            with pytest.raises(CannotReverse):
                reverse()
            return
        if any(leg[0] in self.reversed for leg in legs):  # asked again with the same reason: the first answer
            again = reverse()
            assert again.replayed and {row.related_id for row in again.rows} == {leg[0] for leg in legs}
            return
        legs.sort(key=lambda leg: leg[2] in CREDIT, reverse=True)  # the ledger debits first
        if any(REVERSING[k] == "reversal_debit" and not self._fits(n, a) for _, n, k, a in legs):
            with pytest.raises(InsufficientFunds):
                reverse()
            return
        rows = reverse().rows
        by_original = {row.related_id: row for row in rows}
        for leg_id, n, k, a in legs:
            if REVERSING[k] == "reversal_debit":
                self._expire(n)
            self._apply(n, REVERSING[k], a, by_original[leg_id], related=leg_id)
            self.reversed.add(leg_id)

    @rule(number=st.sampled_from(NUMBERS), limit=st.one_of(st.none(), st.integers(0, 40_000)))
    def set_limit(self, number, limit):
        set_it = lambda: aio.run(accounts.set_overdraft_limit(self.db, number, limit, "m", now=self.now))  # noqa: E731
        owed = self._held_now(number) - self.balance.get(number, 0)
        if number not in self.balance:
            with pytest.raises(UnknownAccount):
                set_it()
        elif limit is not None and owed > limit:
            with pytest.raises(LimitBelowDebt):
                set_it()
        else:
            account = set_it()
            self._expire(number)
            self.own[number] = limit
            self.limit[number] = limit if limit is not None else max(MAX_DEBT, owed)
            assert account.overdraft_limit_cents == self.limit[number]

    @rule(number=st.sampled_from(NUMBERS), amount=amounts, life=st.integers(1, 90))
    def place_hold(self, number, amount, life):
        place = lambda: aio.run(holds.place(self.db, number, amount, life, "", "m", now=self.now))  # noqa: E731
        if number not in self.balance:
            with pytest.raises(AccountNotFound):
                place()
        elif not self._fits(number, amount):
            with pytest.raises(InsufficientFunds):
                place()
        else:
            hold, available = place()
            self._expire(number)
            self.holds[hold.id] = [number, amount, self.now + life, "pending"]
            assert available == self.balance[number] + self.limit[number] - self._held_now(number)

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def capture_hold(self, data):
        hold_id = data.draw(st.sampled_from(sorted(self.holds)))
        number, amount, _, _ = self.holds[hold_id]
        part = data.draw(st.one_of(st.none(), st.integers(1, amount + 10)))
        capture = lambda: aio.run(holds.capture(self.db, hold_id, part, "m", now=self.now))  # noqa: E731
        status = self._status(hold_id)
        if status != "pending":
            with pytest.raises(HoldEnded) as ended:
                capture()
            assert ended.value.json_fields["status"] == status
        elif part is not None and part > amount:
            with pytest.raises(CaptureAboveHold):
                capture()
        else:
            done = capture()
            self._expire(number)
            self.holds[hold_id][3] = "captured"
            self._apply(number, "withdrawal", part or amount, done.transaction)

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def void_hold(self, data):
        hold_id = data.draw(st.sampled_from(sorted(self.holds)))
        status = self._status(hold_id)
        void = lambda: aio.run(holds.void(self.db, hold_id, "m", now=self.now))  # noqa: E731
        if status != "pending":
            with pytest.raises(HoldEnded):
                void()
        else:
            assert void().status == "voided"
            self._expire(self.holds[hold_id][0])
            self.holds[hold_id][3] = "voided"

    @rule(seconds=st.integers(0, 60))
    def wait(self, seconds):
        self.now += seconds

    # after every step

    @invariant()
    def ledger_equals_model(self):
        customers = "WHERE account_number NOT LIKE '@%'"  # the bank's side: tests/test_cash_model.py models it
        rows = self.raw.rows(f"SELECT account_number, balance_cents, overdraft_limit_cents, held_cents FROM accounts "
                             f"{customers}")
        journal = self.raw.rows(f"SELECT id, account_number, kind, amount_cents, related_id FROM journal {customers} "
                                "ORDER BY id")
        assert {n: (b, lim, held) for n, b, lim, held in rows} == {
            n: (self.balance[n], self.limit[n], self._held(n)) for n in self.balance}
        assert journal == self.journal
        assert dict(self.raw.rows("SELECT id, status FROM holds")) == {i: h[3] for i, h in self.holds.items()}
        for number in self.balance:  # as every request reads it now; never below the limit, holds counted
            account = aio.run(accounts.get_account(self.db, number, now=self.now))
            assert account.available_cents == self.balance[number] + self.limit[number] - self._held_now(number)
            assert self.balance[number] - self._held(number) >= -self.limit[number]


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
