"""Verification that scales (issue 22): the default run checks the rows written since the last run that passed, each
account's from the chain head that run kept; --full checks everything; memory does not grow with the ledger."""
import tracemalloc

import pytest

from atm_web.ledger import accounts, verification
from atm_web.serving.progress import Progress

from conftest import many_rows


def deposits(run, db, numbers, cents=100):
    for number in numbers:
        run(accounts.deposit(db, number, cents, "t"))


def record(run, db, full=False):
    return run(verification.verify_and_record(db, "test", full=full))


def test_the_default_run_checks_only_the_rows_since_the_last_that_passed(db, run):
    deposits(run, db, ["A1", "A2", "A1"])
    first = record(run, db)
    assert (first.kind, first.ok, first.rows_checked) == ("full", True, 6)  # no checkpoint yet: every row
    deposits(run, db, ["A2", "A3"])
    second = record(run, db)
    assert (second.kind, second.ok, second.rows_checked) == ("incremental", True, 4)
    assert second.through_id == first.through_id + 4
    assert record(run, db).rows_checked == 0  # nothing written since
    assert record(run, db, full=True).rows_checked == 10


def test_a_row_edited_before_the_checkpoint_is_caught_by_the_next_full_run(app, db, raw, run):
    deposits(run, db, ["E1", "E1", "E2"])
    runner = app.test_cli_runner()
    assert runner.invoke(args=["verify"]).exit_code == 0
    raw.without_immutability("UPDATE journal SET memo = 'edited' WHERE id = 3")
    deposits(run, db, ["E2"])
    default = runner.invoke(args=["verify"])
    assert default.exit_code == 0 and "OK (incremental): 2 journal rows" in default.output  # not read again
    full = runner.invoke(args=["verify", "--full"])
    assert full.exit_code == 1 and full.output.splitlines()[0].startswith("FAIL journal row 3: hash")
    after_failure = runner.invoke(args=["verify"])  # the run after one that failed checks everything again
    assert after_failure.exit_code == 1 and "FAIL journal row 3" in after_failure.output


@pytest.mark.parametrize("edit", [
    "UPDATE journal SET amount_cents = 1 WHERE id = (SELECT max(id) - 1 FROM journal)",
    "UPDATE journal SET actor = 'someone else' WHERE id = (SELECT max(id) - 1 FROM journal)",
    "DELETE FROM journal WHERE id = (SELECT max(id) - 5 FROM journal)",  # a row in the middle of a chain
])
def test_a_row_edited_after_the_checkpoint_is_caught_by_the_default_run(db, raw, run, edit):
    deposits(run, db, ["F1", "F2"])
    assert record(run, db).ok
    deposits(run, db, ["F1", "F1", "F2"])
    raw.without_immutability(edit)
    outcome = record(run, db)
    assert outcome.kind == "incremental" and not outcome.ok
    assert outcome.problems[0].startswith("journal row")


def test_a_tampered_balance_of_an_account_with_no_row_since_is_caught_by_the_default_run(db, raw, run):
    deposits(run, db, ["G1", "G2"])
    assert record(run, db).ok
    deposits(run, db, ["G2"])
    raw.execute("UPDATE accounts SET balance_cents = 5000 WHERE account_number = 'G1'")
    outcome = record(run, db)
    assert outcome.kind == "incremental"
    assert "account G1: balance 5000 differs from its journal sum" in outcome.problems


def test_a_verified_row_removed_from_the_end_of_a_chain_is_caught_by_a_full_run(db, raw, run):
    """The last rows of an account deleted, and its balance put back to match: every chain still holds, every
    balance equals its journal; only the chain head the last run kept knows the row was there."""
    deposits(run, db, ["H1", "H1"])
    assert record(run, db).ok
    last = raw.scalar("SELECT max(id) FROM journal WHERE account_number = 'H1'")
    bank = raw.scalar("SELECT max(id) FROM journal")
    raw.without_immutability(f"DELETE FROM journal WHERE id IN ({last}, {bank})")
    raw.execute("UPDATE accounts SET balance_cents = 100 WHERE account_number = 'H1'")
    raw.execute("UPDATE accounts SET balance_cents = -100 WHERE account_number = '@clearing'")
    outcome = record(run, db, full=True)
    assert f"account H1: its row {last}, verified before, is gone or changed" in outcome.problems


def test_a_run_that_stopped_before_it_was_recorded_leaves_heads_the_next_run_starts_from(db, run):
    deposits(run, db, ["K1", "K2"])
    assert record(run, db).ok
    deposits(run, db, ["K1", "K2"])
    run(verification.run(db, since=run(verification.checkpoint(db)), keep_heads=True))
    deposits(run, db, ["K1"])  # the heads moved on past the checkpoint; the next run skips what they cover
    outcome = record(run, db)
    assert outcome.ok and outcome.kind == "incremental" and outcome.rows_checked == 2


def test_cash_noted_for_the_large_cash_rule_must_agree_with_the_journal(app, db, raw, run):
    from atm_web.cash import cash_desk

    from conftest import add_teller, open_drawer
    drawer = open_drawer(app, add_teller(app, "tess")).account_number
    deposits(run, db, ["L1"])
    for cents in (10_000, 20_000):
        run(cash_desk.post_cash(db, "L1", "deposit", cents, "teller:tess", drawer=drawer, now=app.config["CLOCK"]()))
        if cents == 10_000:
            assert record(run, db).ok
    raw.script("DROP TRIGGER customer_cash_no_delete; DELETE FROM customer_cash WHERE amount_cents = 20000;",
               "ALTER TABLE customer_cash DISABLE TRIGGER USER; DELETE FROM customer_cash WHERE amount_cents = 20000; "
               "ALTER TABLE customer_cash ENABLE TRIGGER USER;")
    outcome = record(run, db)
    assert outcome.kind == "incremental" and len(outcome.problems) == 1
    assert "cash through a drawer not noted for the large-cash rule" in outcome.problems[0]
    raw.script("DROP TRIGGER customer_cash_no_update; UPDATE customer_cash SET amount_cents = 1;",
               "ALTER TABLE customer_cash DISABLE TRIGGER USER; UPDATE customer_cash SET amount_cents = 1; "
               "ALTER TABLE customer_cash ENABLE TRIGGER USER;")
    assert any("cash noted on account L1 that its journal row does not show" in problem
               for problem in record(run, db, full=True).problems)


def test_progress_is_reported_as_the_run_goes(db, run, monkeypatch):
    monkeypatch.setattr(verification, "PROGRESS_EVERY", 4)
    deposits(run, db, [f"P{i}" for i in range(5)])
    seen, totals = [], []
    run(verification.run(db, progress=seen.append, total=totals.append))
    assert totals == [10] and seen == [4, 8, 10]
    written = []
    line = Progress(written.append, "verify")
    line.set_total(10)
    line(4)
    assert written[-1].startswith("\rverify: 4 of 10 rows (40%), ") and "rows/s" in written[-1]


def test_verify_is_quiet_when_not_on_a_terminal(app, db, run):
    deposits(run, db, ["Q1"])
    result = app.test_cli_runner().invoke(args=["verify"])
    assert result.exit_code == 0 and "\r" not in result.output


def test_the_admin_page_says_which_kind_ran(app, db, run):
    from conftest import add_teller, log_in
    client = log_in(app, app.test_client(), add_teller(app, "ada", "admin"))
    deposits(run, db, ["V1"])
    client.post("/admin/verification")
    assert "Every row (full)" in client.get("/admin/verification").get_data(as_text=True)
    client.post("/admin/verification")
    assert "The rows since the run before (incremental)" in client.get("/admin/verification").get_data(as_text=True)


@pytest.mark.sqlite_only
def test_verify_memory_does_not_grow_with_the_ledger(db, run):
    """The most memory a full run takes, on a ledger of 2,000 accounts and on one four times larger: within 30%
    (a run keeping a number per account, as verify did, took 3 times more on the larger)."""
    peaks = []
    for size in (2_000, 8_000):
        many_rows(run, db, size if not peaks else size - 2_000)
        tracemalloc.start()
        try:
            problems, rows = run(verification.verify(db))
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert problems == [] and rows == size * 4
    print(f"verify peak memory: {peaks[0] // 1024} KiB at 8,000 rows, {peaks[1] // 1024} KiB at 32,000")
    assert peaks[1] < peaks[0] * 1.3, peaks
