"""Large cash (large_cash.py, cash_desk.py): cash in and cash out summed separately per customer per business day,
across their accounts and all tellers; a cash transaction that leaves a total above CTR_THRESHOLD needs the identity
check first and is then reported; the worklist and its CSV are for administrators."""
import asyncio
import csv
import io
import uuid

import pytest

from atm_web.customers import holders
from atm_web.customers import records as customers
from atm_web.serving import aio

from conftest import add_teller, add_token, bearer, close_app, decide, holder_fields, log_in, make_app, open_drawer

HOLLY = customers.Details("Holly Holder", "1980-02-29", "passport", "P123", "US", "1 Main Street", "+1 555 0100")
HAL = customers.Details("Hal Other", "1975-06-01", "national_id", "N9", "FR", "2 Rue Haute", "+33 1 00 00")


@pytest.fixture
def bank(database, clock):
    """Tellers tina and tom with 50,000.00 in each drawer, ada (an admin), sam (a supervisor); Holly holds H1 and H2,
    Hal holds L1, N1 has no holder (each opened with 1.00 from the API). Withdrawals are never held here
    (APPROVAL_CASH_LIMIT beyond them): test_approvals.py covers that rule."""
    app = make_app(database, CLOCK=clock, APPROVAL_CASH_LIMIT="1000000")
    db, api = app.extensions["atm_db"], app.test_client()
    token = bearer(add_token(app))
    people = {name: add_teller(app, name, role) for name, role in
              (("tina", "teller"), ("tom", "teller"), ("ada", "admin"), ("sam", "supervisor"))}
    for name in ("tina", "tom"):
        open_drawer(app, people[name], 5_000_000)
    for number in ("H1", "H2", "L1", "N1"):
        assert api.post(f"/accounts/{number}/deposit", json={"amount": 1}, headers=token).status_code == 200
    holly = aio.run(holders.link_holder(db, "H1", None, HOLLY, "test", clock(), threshold_cents=1_000_000))
    aio.run(holders.link_holder(db, "H2", holly.id, None, "test", clock(), threshold_cents=1_000_000))
    hal = aio.run(holders.link_holder(db, "L1", None, HAL, "test", clock(), threshold_cents=1_000_000))
    clients = {name: log_in(app, app.test_client(), teller) for name, teller in people.items()}
    yield app, clients, {"holly": holly.id, "hal": hal.id}, token
    close_app(app)


def cash(client, number, amount, action="deposit", **extra):
    return client.post("/teller/transactions", data={"account_number": number, "amount": amount,
                                                     action: action.capitalize(), "form_key": uuid.uuid4().hex,
                                                     **extra})


def checked(customer_id):
    return {"id_checked": "y", "present_customer": str(customer_id)}


def reports(raw):
    return raw.rows("SELECT customer_id, status FROM large_cash ORDER BY id")


def test_6000_then_5000_in_at_two_tellers_needs_the_identity_check_then_reports(bank, raw):
    _, clients, ids, _ = bank
    assert cash(clients["tina"], "H1", "6000").status_code == 303
    rows = raw.all_rows_count()
    asked = cash(clients["tom"], "H2", "5000")  # another account of hers, another teller: 11,000.00 in
    page = asked.get_data(as_text=True)
    assert asked.status_code == 409 and "Large cash: identity check" in page and "Holly Holder" in page
    assert "passport P123 (US)" in page and "I checked this identity document of the person present" in page
    assert raw.all_rows_count() == rows and reports(raw) == []  # nothing written
    done = cash(clients["tom"], "H2", "5000", **checked(ids["holly"]))
    assert done.status_code == 303 and "/teller/receipts/" in done.location
    assert reports(raw) == [(ids["holly"], "open")]
    assert raw.rows("SELECT document, checked_by FROM large_cash_checks") == [("passport P123 (US)", "teller:tom")]
    assert raw.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'large cash identity checked'") == 1
    again = cash(clients["tina"], "H1", "10", **checked(ids["holly"]))  # above still: checked and listed too
    assert again.status_code == 303 and raw.scalar("SELECT COUNT(*) FROM large_cash_checks") == 2
    assert cash(clients["tina"], "H1", "10").status_code == 409  # and never without the check


def test_9000_in_and_9000_out_is_never_netted_nor_reported(bank, raw):
    _, clients, _, _ = bank
    assert cash(clients["tina"], "H1", "9000").status_code == 303
    assert cash(clients["tom"], "H1", "9000", "withdraw").status_code == 303
    assert reports(raw) == []


@pytest.mark.parametrize("amount, reported", [("10000.00", False), ("10000.01", True)])
def test_exactly_the_threshold_is_not_above_it(bank, raw, amount, reported):
    _, clients, ids, _ = bank
    first = cash(clients["tina"], "L1", amount)
    assert first.status_code == (409 if reported else 303)
    if reported:
        assert cash(clients["tina"], "L1", amount, **checked(ids["hal"])).status_code == 303
    assert reports(raw) == ([(ids["hal"], "open")] if reported else [])


def test_cash_out_above_the_threshold_needs_the_check_too(bank, raw):
    _, clients, ids, token = bank
    app = bank[0]
    app.test_client().post("/accounts/H1/deposit", json={"amount": 20000}, headers=token)  # not cash: no total
    assert reports(raw) == []
    assert cash(clients["tina"], "H1", "10000.01", "withdraw").status_code == 409
    assert cash(clients["tina"], "H1", "10000.01", "withdraw", **checked(ids["holly"])).status_code == 303
    assert reports(raw) == [(ids["holly"], "open")]


def test_a_new_account_opened_with_large_cash_records_the_check_of_its_new_holder(bank, raw):
    _, clients, _, _ = bank
    fields = {"confirm_open": "yes", **holder_fields("Nora New", document_number="NN1")}
    asked = cash(clients["tina"], "NEW1", "10000.01", **fields)
    page = asked.get_data(as_text=True)
    assert asked.status_code == 409 and "Open a new account?" in page and "Nora New" in page
    assert "I checked the identity document of the holder, who is present" in page
    assert raw.scalar("SELECT COUNT(*) FROM customers WHERE full_name = 'Nora New'") == 0  # nothing written
    done = cash(clients["tina"], "NEW1", "10000.01", id_checked="y", **fields)
    assert done.status_code == 303
    (nora,), = raw.rows("SELECT id FROM customers WHERE full_name = 'Nora New'")
    assert reports(raw) == [(nora, "open")]
    assert raw.rows("SELECT document, present_customer_id FROM large_cash_checks") == [("passport NN1 (US)", nora)]


def test_api_postings_are_not_cash(bank, raw):
    app, clients, _, token = bank
    app.test_client().post("/accounts/H1/deposit", json={"amount": 9000}, headers=token)
    assert cash(clients["tina"], "H1", "1500").status_code == 303  # 1,500.00 of cash in: no check
    assert reports(raw) == []


def test_separate_business_days_do_not_add_up(bank, raw, clock):
    _, clients, _, _ = bank
    assert cash(clients["tina"], "H1", "6000").status_code == 303
    clock.advance(24 * 3600)
    assert cash(clients["tina"], "H1", "5000").status_code == 303
    assert reports(raw) == []


def test_an_account_with_no_holder_asks_for_the_holder_first(bank, raw):
    _, clients, ids, _ = bank
    assert cash(clients["tina"], "N1", "10000").status_code == 303  # at the threshold: no question
    rows = raw.all_rows_count()
    asked = cash(clients["tina"], "N1", "0.01")
    assert asked.status_code == 303 and asked.location == "/teller/accounts/N1/holders"
    assert "no holder on file: add the holder first" in clients["tina"].get(asked.location).get_data(as_text=True)
    assert raw.all_rows_count() == rows
    added = clients["tina"].post("/teller/accounts/N1/holders", data={"holder": str(ids["hal"])})
    assert added.status_code == 303
    assert cash(clients["tina"], "N1", "0.01").status_code == 409  # now Hal's: the identity check
    assert cash(clients["tina"], "N1", "0.01", **checked(ids["hal"])).status_code == 303
    assert reports(raw) == [(ids["hal"], "open")]


def test_the_worklist_and_its_csv_are_for_administrators_and_entries_are_marked_filed(bank, raw):
    _, clients, ids, _ = bank
    cash(clients["tina"], "H1", "6000")
    cash(clients["tom"], "H2", "5000", **checked(ids["holly"]))
    cash(clients["tom"], "H1", "700", "withdraw")
    for name in ("tina", "sam"):
        assert clients[name].get("/admin/large-cash/").status_code == 403
        assert clients[name].get("/admin/large-cash/report.csv").status_code == 403
    page = clients["ada"].get("/admin/large-cash/").get_data(as_text=True)
    assert "Holly Holder" in page and "11,000.00" in page and "700.00" in page
    assert "identity checked: passport P123 (US) by tom" in page
    got = clients["ada"].get("/admin/large-cash/report.csv")
    assert got.mimetype == "text/csv"
    lines = list(csv.DictReader(io.StringIO(got.get_data(as_text=True))))
    assert [(r["kind"], r["amount"], r["account"], r["teller"]) for r in lines] == [
        ("cash in", "6,000.00", "H1", "teller:tina"), ("cash in", "5,000.00", "H2", "teller:tom"),
        ("cash out", "700.00", "H1", "teller:tom")]
    assert {(r["full_name"], r["cash_in"], r["cash_out"]) for r in lines} == {("Holly Holder", "11,000.00", "700.00")}
    (report_id,), = raw.rows("SELECT id FROM large_cash")
    assert clients["tina"].post(f"/admin/large-cash/{report_id}/filed").status_code == 403
    assert clients["ada"].post(f"/admin/large-cash/{report_id}/filed").status_code == 303
    assert raw.rows("SELECT status, filed_by FROM large_cash") == [("filed", "ada")]
    assert raw.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'large cash filed'") == 1


def test_a_name_that_looks_like_a_formula_is_written_as_text_in_the_csv(bank, raw, run):
    app, clients, _, _ = bank
    db = app.extensions["atm_db"]
    sly = run(customers.create_customer(db, customers.Details("=HYPERLINK(\"x\")", "1990-01-01", "passport", "Z1",
                                                              "US", "3 Road", "+1 555 0199"), "test", 0))
    run(holders.link_holder(db, "N1", sly.id, None, "test", 0, threshold_cents=1_000_000))
    cash(clients["tina"], "N1", "10000.01", **{"id_checked": "y", "present_customer": str(sly.id)})
    text = clients["ada"].get("/admin/large-cash/report.csv").get_data(as_text=True)
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text


# Issue 19: the second probe's fixes to the large-cash rule

def test_cash_split_over_holderless_accounts_is_rechecked_when_their_holder_is_added(bank, raw):
    """Point 1: two accounts opened by the API with no holder take 9,000.00 cash each (each within the rule), then
    one customer is added as their holder: the second addition takes her day to 18,000.00 and asks for her identity
    check (nothing written without it), then reports it."""
    app, clients, ids, token = bank
    assert app.test_client().post("/accounts/N2/deposit", json={"amount": 1}, headers=token).status_code == 200
    for number in ("N1", "N2"):
        assert cash(clients["tina"], number, "9000").status_code == 303
    tina = clients["tina"]
    assert tina.post("/teller/accounts/N1/holders", data={"holder": str(ids["hal"])}).status_code == 303
    holders_before = raw.rows("SELECT account_number, customer_id FROM account_holders ORDER BY 1, 2")
    asked = tina.post("/teller/accounts/N2/holders", data={"holder": str(ids["hal"])})
    page = asked.get_data(as_text=True)
    assert asked.status_code == 409 and "Hal Other" in page and "Large cash: identity check" in page
    assert "I checked the identity document of this holder, who is present" in page
    assert raw.rows("SELECT account_number, customer_id FROM account_holders ORDER BY 1, 2") == holders_before
    assert reports(raw) == []
    done = tina.post("/teller/accounts/N2/holders", data={"holder": str(ids["hal"]), "id_checked": "y"})
    assert done.status_code == 303
    assert reports(raw) == [(ids["hal"], "open")]
    assert raw.rows("SELECT entry_id, holder_added_to, present_customer_id, full_name FROM large_cash_checks") == [
        (None, "N2", ids["hal"], "Hal Other")]
    assert cash(clients["tom"], "L1", "1").status_code == 409  # and Hal's day is above from now on


def test_a_new_customer_added_as_holder_of_an_account_with_large_cash_today_is_checked_with_it(bank, raw):
    _, clients, _, _ = bank
    assert cash(clients["tina"], "N1", "10000").status_code == 303
    assert cash(clients["tina"], "N1", "0.01").status_code == 303  # no holder: asked to add one first
    fields = holder_fields("Nina Newholder", document_number="NH1")
    added = clients["tina"].post("/teller/accounts/N1/holders", data={**fields, "id_checked": "y"})
    assert added.status_code == 303  # 10,000.00 is not above: no report...
    assert reports(raw) == []
    assert cash(clients["tina"], "N1", "0.01").status_code == 409  # ...but the next cent is


def test_a_teller_cannot_open_a_holderless_account_with_a_transfer(bank, raw):
    """Point 1: the probe opened holderless accounts with a teller's Transfer of 0.01 to a new number."""
    _, clients, _, _ = bank
    form = {"from_account": "H1", "to_account": "SPLIT1", "amount": "0.01", "form_key": uuid.uuid4().hex}
    asked = clients["tina"].post("/teller/transfer", data=form)
    assert asked.status_code == 303 and "/teller/accounts/SPLIT1/open?kind=transfer" in asked.location
    assert raw.scalar("SELECT COUNT(*) FROM accounts WHERE account_number = 'SPLIT1'") == 0
    refused = clients["tina"].post("/teller/transfer", data={**form, "confirm_open": "yes", "holder": "new"})
    assert refused.status_code == 422 and raw.scalar("SELECT COUNT(*) FROM accounts WHERE account_number = "
                                                     "'SPLIT1'") == 0
    done = clients["tina"].post("/teller/transfer", data={**form, "confirm_open": "yes",
                                                          **holder_fields("Sam Split", document_number="SS1")})
    assert done.status_code == 303
    assert raw.rows("SELECT c.full_name FROM account_holders h JOIN customers c ON c.id = h.customer_id WHERE "
                    "h.account_number = 'SPLIT1'") == [("Sam Split",)]


def test_a_reversal_of_cash_counts_for_the_rule_and_pays_from_the_askers_drawer(bank, raw):
    """Point 2: tina took 9,000.00 in for Holly; tom pays 6,000.00 out to her; reversing the 9,000.00 deposit hands
    9,000.00 more out (15,000.00 out): asked from the receipt, it needs her identity check, and once approved it is
    paid from tom's drawer (the teller who asked), never tina's."""
    app, clients, ids, token = bank
    deposit = cash(clients["tina"], "H1", "9000")
    tx_id = int(deposit.location.rsplit("/", 1)[1])
    app.test_client().post("/accounts/H2/deposit", json={"amount": 20000}, headers=token)  # not cash
    assert cash(clients["tom"], "H2", "6000", "withdraw").status_code == 303
    drawers_before = dict(raw.rows("SELECT t.username, -a.balance_cents FROM drawer_sessions s JOIN tellers t ON "
                                   "t.id = s.teller_id JOIN accounts a ON a.account_number = s.account_number"))
    asked = clients["tom"].post(f"/teller/receipts/{tx_id}/reversal", data={"reason": "wrong account"})
    page = asked.get_data(as_text=True)
    assert asked.status_code == 409 and "Large cash: identity check" in page and "Holly Holder" in page
    assert raw.scalar("SELECT COUNT(*) FROM approvals") == 0
    held = clients["tom"].post(f"/teller/receipts/{tx_id}/reversal",
                               data={"reason": "wrong account", **checked(ids["holly"])})
    assert held.status_code == 303 and "/teller/requests/" in held.location
    assert decide(clients["sam"], held).status_code == 303
    drawers_after = dict(raw.rows("SELECT t.username, -a.balance_cents FROM drawer_sessions s JOIN tellers t ON "
                                  "t.id = s.teller_id JOIN accounts a ON a.account_number = s.account_number"))
    assert drawers_after == {"tina": drawers_before["tina"], "tom": drawers_before["tom"] - 900_000}
    assert reports(raw) == [(ids["holly"], "open")]
    assert raw.scalar("SELECT COUNT(*) FROM large_cash_checks WHERE entry_id IS NOT NULL") == 1
    lines = list(csv.DictReader(io.StringIO(clients["ada"].get("/admin/large-cash/report.csv").get_data(
        as_text=True))))
    assert [(r["kind"], r["amount"]) for r in lines] == [
        ("cash in", "9,000.00"), ("cash out", "6,000.00"), ("cash out (reversal)", "9,000.00")]


def test_closing_the_day_does_not_reset_the_days_cash(bank, raw, clock, run):
    """Point 4: the large-cash day is the branch's calendar day: cash after Close the day (which moves postings to
    the next business date) still adds to the cash before it."""
    from atm_web.cash import drawers, end_of_day
    from atm_web.staff import tellers
    app, clients, ids, _ = bank
    db = app.extensions["atm_db"]
    people = {t.username: t for t in run(tellers.list_tellers(db))}
    assert cash(clients["tina"], "H1", "6000").status_code == 303
    for name in ("tina", "tom"):
        expected = -raw.scalar("SELECT a.balance_cents FROM drawer_sessions s JOIN accounts a ON a.account_number = "
                               "s.account_number WHERE s.teller_id = ? AND s.status = 'open'", (people[name].id,))
        run(drawers.close_drawer(db, people[name], {1: expected}, 0, now=clock()))
    closed, _ = run(end_of_day.close_day(db, people["ada"], now=clock()))
    open_drawer(app, people["tina"], 1_000_000)
    rows = raw.journal_count()
    asked = cash(clients["tina"], "H2", "5000")  # the next business date, the same calendar day: 11,000.00 in
    assert asked.status_code == 409 and "Large cash: identity check" in asked.get_data(as_text=True)
    assert raw.journal_count() == rows
    assert cash(clients["tina"], "H2", "5000", **checked(ids["holly"])).status_code == 303
    assert raw.scalar("SELECT business_date FROM journal WHERE account_number = 'H2' ORDER BY id DESC LIMIT 1") > \
        closed
    assert reports(raw) == [(ids["holly"], "open")]


def test_the_report_keeps_the_identity_that_was_checked(bank, raw, run):
    """Point 6: a teller's later edit of the customer's record does not rewrite what the report and its CSV show."""
    app, clients, ids, _ = bank
    cash(clients["tina"], "H1", "10000.01", **checked(ids["holly"]))
    db = app.extensions["atm_db"]
    run(customers.update_customer(db, ids["holly"], customers.Details(
        "Someone Else", "1980-02-29", "national_id", "CHANGED9", "FR", "1 Main Street", "+1 555 0100"), "test", 0))
    page = clients["ada"].get("/admin/large-cash/").get_data(as_text=True)
    assert "Holly Holder" in page and "passport P123 (US)" in page
    assert "Someone Else" not in page and "CHANGED9" not in page
    (line,) = csv.DictReader(io.StringIO(clients["ada"].get("/admin/large-cash/report.csv").get_data(as_text=True)))
    assert (line["full_name"], line["document"]) == ("Holly Holder", "passport P123 (US)")
    assert raw.rows("SELECT full_name, document_number FROM large_cash_checks") == [("Holly Holder", "P123")]


@pytest.mark.parametrize("separator", [";", "\t", ","])
def test_no_csv_cell_starts_a_formula_whatever_the_separator_a_spreadsheet_splits_on(bank, run, separator):
    """Point 9: 'Lee X;=cmd|' /C calc'!A0;' split on ';' (or a tab) must not start a cell with '='."""
    app, clients, _, _ = bank
    db = app.extensions["atm_db"]
    for number, name in (("N1", "Lee X;=cmd|' /C calc'!A0;"), ("H9", "Tab\t=1+2"), ("H8", "Comma, +SUM(A1)")):
        app.test_client().post(f"/accounts/{number}/deposit", json={"amount": 1}, headers=bank[3])
        sly = run(customers.create_customer(db, customers.Details(name, "1990-01-01", "passport",
                                                                  f"Z{number}", "US", "3 Road", "+1 555 0199"),
                                            "test", 0))
        run(holders.link_holder(db, number, sly.id, None, "test", 0, threshold_cents=1_000_000))
        cash(clients["tina"], number, "10000.01", **{"id_checked": "y", "present_customer": str(sly.id)})
    text = clients["ada"].get("/admin/large-cash/report.csv").get_data(as_text=True)
    for row in csv.reader(io.StringIO(text), delimiter=separator):
        for cell in row:
            assert cell[:1] not in ("=", "+", "-", "@"), (separator, cell)


def test_two_tellers_confirming_one_new_number_at_once_open_it_once(bank, raw, run):
    """Point 11: the slower confirm is refused (naming the holder on file), nothing written: no customer of its
    own, no cash in the other customer's account."""
    app, clients, _, _ = bank
    first = cash(clients["tina"], "TWIN", "50", confirm_open="yes", **holder_fields("First Holder",
                                                                                  document_number="TW1"))
    assert first.status_code == 303
    rows, customers_count = raw.all_rows_count(), raw.scalar("SELECT COUNT(*) FROM customers")
    second = cash(clients["tom"], "TWIN", "70", confirm_open="yes", **holder_fields("Second Holder",
                                                                                  document_number="TW2"))
    page = second.get_data(as_text=True)
    assert second.status_code == 409
    assert "Account TWIN was opened meanwhile by another teller for First Holder: check the number. Nothing was " \
        "recorded." in page
    assert raw.all_rows_count() == rows and raw.scalar("SELECT COUNT(*) FROM customers") == customers_count
    from atm_web.cash import cash_desk
    from atm_web.cash.refusals import AccountOpenedMeanwhile
    db = app.extensions["atm_db"]
    drawer = raw.scalar("SELECT account_number FROM drawer_sessions WHERE status = 'open' ORDER BY id LIMIT 1")

    async def both():
        return await asyncio.gather(*(cash_desk.post_cash(
            db, "RACE", "deposit", 100, f"teller:t{i}", drawer=drawer, threshold_cents=1_000_000, now=0,
            holder=cash_desk.NewHolder(details=customers.Details(f"Racer {i}", "1990-01-01", "passport", f"R{i}",
                                                                 "US", "1 Road", "+1 555 0100"))) for i in range(2)),
            return_exceptions=True)
    outcomes = run(both())
    assert sorted(type(o).__name__ for o in outcomes) == ["AccountOpenedMeanwhile", "Transaction"]
    assert isinstance(next(o for o in outcomes if isinstance(o, Exception)), AccountOpenedMeanwhile)
    assert raw.scalar("SELECT COUNT(*) FROM account_holders WHERE account_number = 'RACE'") == 1
    assert raw.scalar("SELECT COUNT(*) FROM customers WHERE full_name LIKE 'Racer %'") == 1
