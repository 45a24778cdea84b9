"""Cash model: hypothesis drives drawers, the vault and customers at random against a plain model, on each engine.

Rules: shipments into the vault, drawer opens with random counts, cash deposits and withdrawals at several drawers,
transfers, API deposits, holds placed, captured (in full or in part) and voided between the cash (a hold counts
against every withdrawal, transfer and reversal's debit, never against a deposit), reversals (of cash: through the
drawer of the teller who asks), vault movements, blind closes with random counts and sign-offs, and an ATM's
replenishments (a random blind count and load, confirmed by a second person, or refused when the vault cannot cover
the load, and signed off by a third beyond tolerance; refused while a customer's withdrawal is under way), and the
ATM's customer: withdrawals (held with their notes reserved, or refused: notes the cassettes cannot make, the card's
daily limit, the account's available), the dispenser's results (taken, partial, failed, retracted; reported again),
deposits, and time passing, which expires a withdrawal whose result never came. After every step: each open
drawer's and the ATM's expected cash (the model's) equals its account's balance, the ATM's expected and reserved
notes per cassette the model's, each customer's balance and held equal the model's, every hold's and withdrawal's
status the model's, every transaction sums to zero, all balances sum to zero, no cash account holds less than
nothing, and verify passes (the ATM's journal included).
"""
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from atm_web.approvals.decisions import decide
from atm_web.cash import atm_deposits, atm_withdrawals, atms, cash_desk, drawers, replenishment, vault
from atm_web.cash.atm_withdrawals import HOLD_SECONDS, AboveDailyLimit, CannotPay
from atm_web.cash.note_plans import Free, plan
from atm_web.cash.refusals import AtmRefused, DrawerRefused
from atm_web.core.clock import journal_time
from atm_web.core.settings import BranchSettings, settings_of
from atm_web.customers import cards, records
from atm_web.ledger import accounts, holds, reversals, verification
from atm_web.ledger.accounts import LEDGER_STARTUP
from atm_web.ledger.journal import posting_stamp
from atm_web.ledger.refusals import AccountNotFound, DrawerNotOpen, HoldEnded, InsufficientFunds, NotEnoughCash
from atm_web.serving import aio
from atm_web.staff import tellers
from atm_web.storage.postgresql import PostgresDatabase
from atm_web.storage.sqlite import SQLiteDatabase

from conftest import Raw, drop_postgres_database, new_postgres_database, password_hash, require_postgres

CUSTOMERS = ["K1", "K2", "K3"]
DENOMINATIONS = (10000, 2000, 500, 100, 25, 1)
TOLERANCE = 500
amounts = st.integers(min_value=1, max_value=40_000)
ATM_FUNDS = 150_000  # A1's, from a script: the ATM's customer's
counts = st.dictionaries(st.sampled_from(DENOMINATIONS), st.integers(min_value=0, max_value=6), max_size=4)
SIGNED = ("CASE WHEN kind IN ('deposit', 'transfer_in', 'reversal_credit', 'credit') THEN amount_cents "
          "ELSE -amount_cents END")


class Cash(RuleBasedStateMachine):
    engine = "sqlite"

    def __init__(self):
        super().__init__()
        if self.engine == "sqlite":
            self.dir = tempfile.TemporaryDirectory()
            self.location = str(Path(self.dir.name) / "cash.db")
            # no overdraft: a customer's funds are plain
            self.db = SQLiteDatabase(self.location, 0, startup=LEDGER_STARTUP)
        else:
            self.location = new_postgres_database()
            self.db = PostgresDatabase(self.location, 0, pool_size=2, startup=LEDGER_STARTUP)
        self.db.settings = BranchSettings(pin_key=b"model-pin-key-0123456789", atm_daily_limit_cents=40000)
        self.raw = Raw(self.location)
        aio.run(self.db.open())
        made = [aio.run(tellers.create_teller(self.db, name, password_hash(), role, "test", 0.0))
                for name, role in (("t1", "teller"), ("t2", "teller"), ("t3", "admin"), ("boss", "admin"),
                                   ("sup", "supervisor"))]
        self.tellers, self.boss, self.sup = made[:3], made[3], made[4]
        self.atm = aio.run(atms.register_atm(self.db, "Lobby", "Hall", [10000, 2000], self.boss, time.time()))
        self.atm_cash, self.atm_notes, self.atm_signoff = 0, {1: 0, 2: 0}, None  # signoff: the request waiting
        self.atm_reserved = {1: 0, 2: 0}
        self.clock = time.time()  # the ATM's (and its replenishments'): moved on by time_passes
        self.card = self._atm_customer()
        self.a1 = ATM_FUNDS  # A1's balance: its customer's card's account
        self.withdrawals: dict[int, dict] = {}  # trace -> amount, notes, status, paid, day, hold, expires
        self.atm_holds: dict[int, str] = {}  # hold id -> status
        self.vault = 0
        self.drawer: dict[int, int] = {}  # teller id -> the cash the model expects in their open drawer
        self.session: dict[int, str] = {}  # teller id -> drawer account
        self.pending: dict[int, bool] = {}  # teller id -> waiting for a sign-off (session id)
        self.balance = dict.fromkeys(CUSTOMERS, 0)
        self.posted = []  # (tx id, [(customer, signed)], drawer teller id or None, cash signed for the drawer)
        self.holds: dict[int, list] = {}  # hold id -> [customer, amount, status]

    def _atm_customer(self):
        """A1, funded by a script, held by Ada, who has a card for it."""
        self.run(accounts.deposit(self.db, "A1", ATM_FUNDS, "token:script"))

        async def holder(conn):
            ada = await records.add_customer(conn, records.Details("Ada Atm", "1980-01-01", "passport", "P1", "US",
                                                                   "1 Main Street", "+1 555 0100"), "test", 0.0)
            await records.add_holder(conn, "A1", ada.id, "test", 0.0)
            return ada
        ada = self.run(self.db.write(holder))
        return self.run(cards.issue_card(self.db, ada.id, ["A1"], "A1", self.boss, self.clock)).card

    def _a1_held(self):
        return sum(w["amount"] for w in self.withdrawals.values() if w["status"] == "pending")

    def _atm_expire(self):
        """What the ATM's next write records: each pending withdrawal whose hold's time has come, expired."""
        for w in self.withdrawals.values():
            if w["status"] == "pending" and w["expires"] <= journal_time(self.clock):
                w["status"] = "expired"
                self.atm_holds[w["hold"]] = "expired"
                for position, notes in w["notes"].items():
                    self.atm_reserved[position] -= notes

    def teardown(self):
        aio.run(self.db.close())
        if self.engine == "sqlite":
            self.dir.cleanup()
        else:
            drop_postgres_database(self.location)

    def run(self, coroutine):
        return aio.run(coroutine)

    def available(self, customer):
        return self.balance[customer] - sum(h[1] for h in self.holds.values() if h[0] == customer
                                            and h[2] == "pending")

    def opened(self, customer):
        return bool(self.raw.rows("SELECT 1 FROM accounts WHERE account_number = ?", (customer,)))

    def open_tellers(self):
        return [t for t in self.tellers if t.id in self.session and not self.pending.get(t.id)]

    @rule(amount=amounts)
    def shipment(self, amount):
        self.run(vault.ship_cash(self.db, "in", amount, "CIT", self.boss))
        self.vault += amount

    @rule(who=st.integers(0, 2), count=counts)
    def open_drawer(self, who, count):
        teller = self.tellers[who]
        total = drawers.counts_total(count)
        if teller.id in self.session:
            with pytest.raises(DrawerRefused):
                self.run(drawers.open_drawer(self.db, teller, count))
        elif total > self.vault:
            with pytest.raises(NotEnoughCash):
                self.run(drawers.open_drawer(self.db, teller, count))
        else:
            session = self.run(drawers.open_drawer(self.db, teller, count))
            self.session[teller.id], self.drawer[teller.id] = session.account_number, total
            self.vault -= total

    @precondition(lambda self: self.open_tellers())
    @rule(data=st.data(), customer=st.sampled_from(CUSTOMERS), amount=amounts, deposit=st.booleans())
    def cash(self, data, customer, amount, deposit):
        teller = data.draw(st.sampled_from(self.open_tellers()))
        counter = self.session[teller.id]
        if deposit:
            tx = self.run(accounts.deposit(self.db, customer, amount, teller.actor, counter=counter))
            self.balance[customer] += amount
            self.drawer[teller.id] += amount
            self.posted.append((tx.id, [(customer, amount)], teller.id, amount))
        elif self.available(customer) < amount:
            with pytest.raises(InsufficientFunds):
                self.run(accounts.withdraw(self.db, customer, amount, teller.actor, counter=counter))
        elif self.drawer[teller.id] < amount:
            with pytest.raises(NotEnoughCash):
                self.run(accounts.withdraw(self.db, customer, amount, teller.actor, counter=counter))
        else:
            tx = self.run(accounts.withdraw(self.db, customer, amount, teller.actor, counter=counter))
            self.balance[customer] -= amount
            self.drawer[teller.id] -= amount
            self.posted.append((tx.id, [(customer, -amount)], teller.id, -amount))

    @rule(customer=st.sampled_from(CUSTOMERS), amount=amounts)
    def api_deposit(self, customer, amount):
        tx = self.run(accounts.deposit(self.db, customer, amount, "token:script"))
        self.balance[customer] += amount
        self.posted.append((tx.id, [(customer, amount)], None, 0))

    @rule(source=st.sampled_from(CUSTOMERS), to=st.sampled_from(CUSTOMERS), amount=amounts)
    def transfer(self, source, to, amount):
        if source == to or not self.opened(source):
            return
        if self.available(source) < amount:
            with pytest.raises(InsufficientFunds):
                self.run(accounts.transfer(self.db, source, to, amount, "token:script"))
            return
        debit, _ = self.run(accounts.transfer(self.db, source, to, amount, "token:script"))
        self.balance[source] -= amount
        self.balance[to] += amount
        self.posted.append((debit.id, [(source, -amount), (to, amount)], None, 0))

    @rule(customer=st.sampled_from(CUSTOMERS), amount=amounts)
    def place_hold(self, customer, amount):
        place = lambda: self.run(holds.place(self.db, customer, amount, 600, "", "token:script"))  # noqa: E731
        if not self.opened(customer):
            with pytest.raises(AccountNotFound):  # opened by its first deposit
                place()
            return
        if self.available(customer) < amount:
            with pytest.raises(InsufficientFunds):
                place()
            return
        hold, available = place()
        self.holds[hold.id] = [customer, amount, "pending"]
        assert available == self.available(customer)

    @precondition(lambda self: self.holds)
    @rule(data=st.data(), whole=st.booleans())
    def capture_hold(self, data, whole):
        hold_id = data.draw(st.sampled_from(sorted(self.holds)))
        customer, amount, status = self.holds[hold_id]
        part = None if whole else data.draw(st.integers(1, amount))
        capture = lambda: self.run(holds.capture(self.db, hold_id, part, "token:script"))  # noqa: E731
        if status != "pending":
            with pytest.raises(HoldEnded):
                capture()
            return
        done = capture()
        self.holds[hold_id][2] = "captured"
        self.balance[customer] -= part or amount
        self.posted.append((done.transaction.id, [(customer, -(part or amount))], None, 0))

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def void_hold(self, data):
        hold_id = data.draw(st.sampled_from(sorted(self.holds)))
        void = lambda: self.run(holds.void(self.db, hold_id, "token:script"))  # noqa: E731
        if self.holds[hold_id][2] != "pending":
            with pytest.raises(HoldEnded):
                void()
            return
        void()
        self.holds[hold_id][2] = "voided"

    @precondition(lambda self: self.posted)
    @rule(data=st.data(), asker=st.integers(0, 2))
    def reverse(self, data, asker):
        """A reversal: of cash, asked by a teller and paid through their own drawer (never the original's, unless it
        is theirs); of a transfer or an API posting, through the API."""
        tx_id, legs, teller_id, cash = self.posted.pop(data.draw(st.integers(0, len(self.posted) - 1)))
        short_customer = any(self.available(c) < signed for c, signed in legs if signed > 0)
        if teller_id is None:
            attempt = reversals.reverse(self.db, tx_id, "model", self.boss.actor)
        else:
            asking = self.tellers[asker]
            attempt = cash_desk.reverse_at_counter(self.db, tx_id, "model", asking, now=0.0, threshold_cents=10**12)
            if asking not in self.open_tellers():
                with pytest.raises(DrawerNotOpen):
                    self.run(attempt)
                self.posted.append((tx_id, legs, teller_id, cash))
                return
        if short_customer:
            with pytest.raises(InsufficientFunds):
                self.run(attempt)
            return
        if teller_id is not None and cash > 0 and self.drawer[asking.id] < cash:  # a deposit's cash handed back
            with pytest.raises(NotEnoughCash):
                self.run(attempt)
            return
        self.run(attempt)
        for customer, signed in legs:
            self.balance[customer] -= signed
        if teller_id is not None:
            self.drawer[asking.id] -= cash

    @precondition(lambda self: self.open_tellers())
    @rule(data=st.data(), amount=amounts, to_vault=st.booleans(), confirm=st.booleans())
    def vault_movement(self, data, amount, to_vault, confirm):
        teller = data.draw(st.sampled_from(self.open_tellers()))
        moved = self.run(vault.request_movement(self.db, teller, "to_vault" if to_vault else "to_drawer", amount))
        source = self.drawer[teller.id] if to_vault else self.vault
        if confirm and source < amount:
            with pytest.raises(NotEnoughCash):
                self.run(vault.decide_movement(self.db, moved.id, self.boss, True))
            return
        self.run(vault.decide_movement(self.db, moved.id, self.boss, confirm))
        if confirm:
            sign = -1 if to_vault else 1
            self.drawer[teller.id] += sign * amount
            self.vault -= sign * amount

    @precondition(lambda self: self.open_tellers())
    @rule(data=st.data(), count=counts)
    def close(self, data, count):
        teller = data.draw(st.sampled_from(self.open_tellers()))
        counted = drawers.counts_total(count)
        closed = self.run(drawers.close_drawer(self.db, teller, count, TOLERANCE))
        assert closed.expected_cents == self.drawer[teller.id]
        assert closed.variance_cents == counted - self.drawer[teller.id]
        self.vault += counted
        del self.drawer[teller.id]
        if abs(closed.variance_cents) > TOLERANCE:
            assert closed.status == "pending_signoff"
            self.pending[teller.id] = closed.id
        else:
            assert closed.status == "closed"
            del self.session[teller.id]

    @precondition(lambda self: any(self.pending.values()))
    @rule(data=st.data())
    def sign_off(self, data):
        teller_id = data.draw(st.sampled_from([t for t, s in self.pending.items() if s]))
        self.run(drawers.sign_off(self.db, self.pending.pop(teller_id), self.boss, "model"))
        del self.session[teller_id]

    @rule(left=st.tuples(st.integers(0, 6), st.integers(0, 6)), deposit_bin=st.integers(0, 3),
          load=st.tuples(st.integers(0, 6), st.integers(0, 6)), confirm=st.booleans())
    def replenish_atm(self, left, deposit_bin, load, confirm):
        count = replenishment.Count({1: left[0], 2: left[1]}, {2000: deposit_bin}, {})
        confirmer, loading = self.tellers[2], {1: load[0], 2: load[1]}
        if self.atm_signoff is not None:
            with pytest.raises(AtmRefused):
                self.run(replenishment.enter(self.db, self.atm.id, count, loading, self.boss, self.clock))
            return
        held = self.run(replenishment.enter(self.db, self.atm.id, count, loading, self.boss, self.clock))
        counted = left[0] * 10000 + left[1] * 2000 + deposit_bin * 2000
        loaded = load[0] * 10000 + load[1] * 2000
        if not confirm:
            declined = self.run(decide(self.db, held.id, confirmer, False, "declined", now=self.clock))
            assert declined.outcome == "declined"
            return
        under_way = any(w["status"] == "pending" and w["expires"] > journal_time(self.clock)
                        for w in self.withdrawals.values())
        if under_way or loaded > self.vault + counted:
            with pytest.raises(AtmRefused if under_way else NotEnoughCash):
                self.run(decide(self.db, held.id, confirmer, True, "ok", now=self.clock))
            self.run(decide(self.db, held.id, confirmer, False, "not now", now=self.clock))
            return
        self._atm_expire()
        self.run(decide(self.db, held.id, confirmer, True, "ok", now=self.clock))
        variance = counted - self.atm_cash
        self.vault += counted - loaded
        self.atm_cash, self.atm_notes = loaded, {1: load[0], 2: load[1]}
        if abs(variance) > settings_of(self.db).variance_tolerance_cents:
            (self.atm_signoff,), = self.raw.rows("SELECT id FROM approvals WHERE kind = 'atm_signoff' "
                                                 "AND status = 'pending'")

    @precondition(lambda self: self.atm_signoff is not None)
    @rule()
    def sign_off_atm(self):
        self.run(decide(self.db, self.atm_signoff, self.sup, True, "recounted", now=self.clock))
        self.atm_signoff = None

    @rule(amount=st.sampled_from([2000, 3000, 4000, 6000, 10000, 12000, 30000, 62000]))
    def atm_withdraw(self, amount):
        withdraw = lambda: self.run(atm_withdrawals.withdraw(  # noqa: E731
            self.db, self.atm.id, self.card.id, "A1", amount, "atm:1", now=self.clock))
        due = [w for w in self.withdrawals.values() if w["status"] == "pending"
               and w["expires"] <= journal_time(self.clock)]
        reserved = dict(self.atm_reserved)
        for w in due:
            for position, notes in w["notes"].items():
                reserved[position] -= notes
        free = [Free(p, d, self.atm_notes[p] - reserved[p]) for p, d in ((1, 10000), (2, 2000))]
        notes = plan(free, amount, settings_of(self.db).atm_max_notes)
        day = posting_stamp(self.db, self.clock).today
        today = sum(w["amount"] if w["status"] == "pending" and w not in due else (w["paid"] or 0)
                    for w in self.withdrawals.values() if w["day"] == day)
        held = self._a1_held() - sum(w["amount"] for w in due)
        refusal = (CannotPay if notes is None else
                   AboveDailyLimit if today + amount > settings_of(self.db).atm_daily_limit_cents else
                   InsufficientFunds if self.a1 - held < amount else None)
        if refusal is not None:
            with pytest.raises(refusal):
                withdraw()
            return
        self._atm_expire()
        w = withdraw()
        assert w.notes == notes
        self.withdrawals[w.trace] = {"amount": amount, "notes": notes, "status": "pending", "paid": None,
                                     "day": day, "hold": w.hold_id,
                                     "expires": journal_time(self.clock + HOLD_SECONDS)}
        self.atm_holds[w.hold_id] = "pending"
        for position, count in notes.items():
            self.atm_reserved[position] += count

    @precondition(lambda self: self.withdrawals)
    @rule(data=st.data(), outcome=st.sampled_from(["taken", "partial", "failed", "retracted"]))
    def atm_result(self, data, outcome):
        trace = data.draw(st.sampled_from(sorted(self.withdrawals)))
        w = self.withdrawals[trace]
        paid_notes = ({p: data.draw(st.integers(0, n)) for p, n in w["notes"].items()} if outcome == "partial"
                      else None)
        report = lambda: self.run(atm_withdrawals.report(  # noqa: E731
            self.db, self.atm.id, trace, outcome, "atm:1", paid_notes=paid_notes, now=self.clock))
        paid = dict(w["notes"]) if outcome == "taken" else {p: n for p, n in (paid_notes or {}).items() if n}
        paid_cents = sum(n * (10000 if p == 1 else 2000) for p, n in paid.items())
        status = {"taken": "dispensed", "partial": "partial", "failed": "failed", "retracted": "retracted"}[outcome]
        if outcome == "partial" and paid_cents in (0, w["amount"]):
            status = "failed" if not paid_cents else "dispensed"
        if w["status"] != "pending":
            if (status, paid_cents or None) == (w["status"], w["paid"]):
                assert report().replayed
            else:
                with pytest.raises(AtmRefused, match="already"):
                    report()
            return
        self._atm_expire()
        if w["status"] == "expired":  # its result came too late: it changes nothing
            assert report().status == "expired"
            return
        assert report().status == status
        w["status"], w["paid"] = status, paid_cents or None
        self.atm_holds[w["hold"]] = "captured" if paid_cents else "voided"
        self.a1 -= paid_cents
        self.atm_cash -= paid_cents
        out = w["notes"] if outcome == "retracted" else paid
        for position, notes in w["notes"].items():
            self.atm_reserved[position] -= notes
            self.atm_notes[position] -= out.get(position, 0)

    @rule(fifties=st.integers(0, 2), twenties=st.integers(0, 3))
    def atm_deposit(self, fifties, twenties):
        notes = {10000: fifties, 2000: twenties}
        deposit = lambda: self.run(atm_deposits.deposit(  # noqa: E731
            self.db, self.atm.id, self.card.id, "A1", notes, "atm:1", now=self.clock))
        if not fifties + twenties:
            with pytest.raises(AtmRefused):
                deposit()
            return
        amount = fifties * 10000 + twenties * 2000
        assert deposit().transaction.amount_cents == amount
        self.a1 += amount
        self.atm_cash += amount

    @rule(seconds=st.sampled_from([1, 60, HOLD_SECONDS + 1]))
    def time_passes(self, seconds):
        self.clock += seconds

    @invariant()
    def books_agree_with_the_model(self):
        cash = dict(self.raw.rows("SELECT account_number, balance_cents FROM accounts WHERE kind IN ('vault', "
                                  "'drawer')"))
        assert -cash["@vault"] == self.vault
        for teller_id, expected in self.drawer.items():
            assert -cash[self.session[teller_id]] == expected  # expected cash is the drawer account's balance
        assert -cash[self.atm.account_number] == self.atm_cash  # the ATM's expected cash, its account's balance
        assert dict(self.raw.rows("SELECT position, notes FROM atm_cassettes")) == self.atm_notes
        assert dict(self.raw.rows("SELECT position, reserved FROM atm_cassettes")) == self.atm_reserved
        assert self.raw.rows("SELECT balance_cents, held_cents FROM accounts WHERE account_number = 'A1'") == [
            (self.a1, self._a1_held())]
        assert dict(self.raw.rows("SELECT trace, status FROM atm_withdrawals")) == {
            t: w["status"] for t, w in self.withdrawals.items()}
        assert all(balance <= 0 for balance in cash.values())  # no cash account below zero notes
        customers = dict(self.raw.rows("SELECT account_number, balance_cents FROM accounts WHERE kind = 'customer'"))
        assert {n: customers.get(n, 0) for n in CUSTOMERS} == self.balance
        held = dict(self.raw.rows("SELECT account_number, held_cents FROM accounts WHERE kind = 'customer'"))
        assert {n: held.get(n, 0) for n in CUSTOMERS} == {n: self.balance[n] - self.available(n) for n in CUSTOMERS}
        assert dict(self.raw.rows("SELECT id, status FROM holds")) == {
            **{i: h[2] for i, h in self.holds.items()}, **self.atm_holds}
        assert self.raw.rows(f"SELECT entry_id FROM journal GROUP BY entry_id HAVING sum({SIGNED}) != 0") == []
        assert self.raw.scalar("SELECT coalesce(sum(balance_cents), 0) FROM accounts") == 0
        assert self.run(verification.verify(self.db))[0] == []


class CashOnPostgres(Cash):
    engine = "postgresql"


pytestmark = pytest.mark.slow  # random runs: make test, not make check
Cash.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
CashOnPostgres.TestCase.settings = settings(max_examples=15, stateful_step_count=25, deadline=None)
TestCashModelSQLite = Cash.TestCase


class TestCashModelPostgres(CashOnPostgres.TestCase):
    def setUp(self):
        require_postgres()
