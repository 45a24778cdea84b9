"""Large cash (large_cash.py, cash_desk.py): cash in and cash out summed separately per customer per business day,
across their accounts and all tellers; a cash transaction that leaves a total above CTR_THRESHOLD needs the identity
check first and is then reported; the worklist and its CSV are for administrators."""
import csv
import io
import uuid

import pytest

from atm_web import aio, customers

from conftest import add_teller, add_token, bearer, close_app, holder_fields, log_in, make_app, open_drawer

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
    holly = aio.run(customers.link_holder(db, "H1", None, HOLLY, "test", clock()))
    aio.run(customers.link_holder(db, "H2", holly.id, None, "test", clock()))
    hal = aio.run(customers.link_holder(db, "L1", None, HAL, "test", clock()))
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
    run(customers.link_holder(db, "N1", sly.id, None, "test", 0))
    cash(clients["tina"], "N1", "10000.01", **{"id_checked": "y", "present_customer": str(sly.id)})
    text = clients["ada"].get("/admin/large-cash/report.csv").get_data(as_text=True)
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text
