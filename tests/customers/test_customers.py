"""Customers (customers.py, customer_pages.py): holders recorded when the teller screen opens an account, found by
part of a name or a document number, shown on the account page and receipts, returned by GET /accounts/{n};
every change audited without personal data, and none of it in the logs."""
import logging
import re
import uuid

import pytest

from atm_web.customers import records as customers

from conftest import holder_fields


def open_account(client, number, amount="10", **fields):
    return client.post("/teller/transactions", data={"account_number": number, "amount": amount, "deposit": "Deposit",
                                                     "form_key": uuid.uuid4().hex, "confirm_open": "yes", **fields})


def test_opening_an_account_asks_for_its_holder_and_writes_nothing_without_one(client, raw):
    asked = client.post("/teller/transactions", data={"account_number": "NEW1", "amount": "10", "deposit": "Deposit",
                                                      "form_key": uuid.uuid4().hex})
    confirm = client.get(asked.location).get_data(as_text=True)
    assert "Record who holds it first" in confirm and "Find an existing customer" in confirm
    assert 'for="full_name">Full name</label>' in confirm and 'for="document_number">Document number' in confirm
    for missing in ({}, {"holder": "new"}, holder_fields(date_of_birth="1980-02-30"),
                    holder_fields(document_country="USA"), holder_fields(phone="call me"), {"holder": "12x"}):
        refused = open_account(client, "NEW1", **missing)
        assert refused.status_code == 422, missing
    assert raw.journal_count() == 0 and raw.scalar("SELECT COUNT(*) FROM customers") == 0
    assert raw.scalar("SELECT COUNT(*) FROM accounts WHERE account_number = 'NEW1'") == 0


def test_a_new_holder_is_recorded_with_the_account_and_shown_on_its_page_and_receipt(client, raw):
    done = open_account(client, "NEW2", **holder_fields("Zoë Ångström", document_number="ab 12-3"))
    assert done.status_code == 303
    receipt = client.get(done.location).get_data(as_text=True)
    assert "Holders</dt><dd>Zoë Ångström" in receipt
    page = client.get("/teller/accounts/NEW2").get_data(as_text=True)
    assert "Zoë Ångström</a>" in page
    assert raw.rows("SELECT full_name, document_number, document_country FROM customers") == [
        ("Zoë Ångström", "AB 12-3", "US")]
    audit = raw.rows("SELECT actor, action, target, detail FROM audit_log WHERE action IN "
                     "('customer added', 'holder added') ORDER BY id")
    assert [a[:2] for a in audit] == [("teller:tina", "customer added"), ("teller:tina", "holder added")]
    assert all("Zo" not in " ".join(a) and "AB 12" not in " ".join(a) for a in audit)  # no personal data


def test_an_existing_customer_is_found_by_part_of_a_name_or_a_document_and_chosen(client, raw):
    open_account(client, "ONE", **holder_fields("Margaret O'Brien", document_number="D77"))
    (customer_id,), = raw.rows("SELECT id FROM customers")
    asked = client.post("/teller/transactions", data={"account_number": "TWO", "amount": "5", "deposit": "Deposit",
                                                      "form_key": uuid.uuid4().hex})
    for query in ("garet", "O'BRI", "d77"):
        found = client.post(asked.location, data={"query": query, "search": "y"}).get_data(as_text=True)
        assert f'value="{customer_id}"' in found and "Margaret O&#39;Brien" in found, query
    open_account(client, "UNI", **holder_fields("Zoë Ångström", document_number="Z9"))
    (zoe,), = raw.rows("SELECT id FROM customers WHERE document_number = 'Z9'")
    assert f'value="{zoe}"' in client.post(asked.location, data={"query": "ÅNGSTRÖM", "search": "y"}).get_data(
        as_text=True)  # any case, beyond ASCII, on both engines
    none = client.post(asked.location, data={"query": "%", "search": "y"}).get_data(as_text=True)
    assert f'value="{customer_id}"' not in none  # a LIKE wildcard is only a character
    key = re.search(r'name="form_key" value="([0-9a-f]{32})"', client.get(asked.location).get_data(as_text=True))
    done = client.post("/teller/transactions", data={"account_number": "TWO", "amount": "5", "deposit": "Deposit",
                                                     "form_key": key.group(1), "confirm_open": "yes",
                                                     "holder": str(customer_id)})
    assert done.status_code == 303
    assert raw.rows("SELECT account_number, customer_id FROM account_holders WHERE account_number IN ('ONE', 'TWO') "
                    "ORDER BY 1") == [("ONE", customer_id), ("TWO", customer_id)]


def test_the_lookup_field_takes_a_number_or_part_of_a_name_and_lists_holders_accounts_and_balances(client):
    open_account(client, "ACC7", "12.34", **holder_fields("Ada Lovelace"))
    open_account(client, "ACC8", "5", **holder_fields("Adam Smith"))
    listed = client.post("/", data={"query": "ada"})
    html = listed.get_data(as_text=True)
    assert listed.status_code == 200 and "Ada Lovelace" in html and "Adam Smith" in html
    assert "ACC7</a> 12.34" in html
    assert client.post("/", data={"query": "ACC7"}).location == "/teller/accounts/ACC7"
    assert client.post("/", data={"query": "nobody"}).location == "/teller/accounts/nobody"  # a number, no name
    assert "No customer matches" in client.post("/", data={"query": "no one here"}).get_data(as_text=True)
    assert client.post("/", data={"query": ""}).status_code == 422


def test_get_account_returns_its_holders_or_none_on_file(client):
    open_account(client, "HELD", **holder_fields("Grace Hopper"))
    client.post("/accounts/APIONLY/deposit", json={"amount": 1})
    held = client.get("/accounts/HELD").get_json()
    assert held["exists"] is True and held["balance"] == 10
    assert [h["full_name"] for h in held["holders"]] == ["Grace Hopper"]
    assert set(held["holders"][0]) == {"customer_id", "full_name"}  # no date of birth, document or address
    assert client.get("/accounts/APIONLY").get_json()["holders"] == []
    assert client.get("/accounts/NEVER").get_json()["exists"] is False
    assert "No holder on file" in client.get("/teller/accounts/APIONLY").get_data(as_text=True)
    assert client.get("/accounts/HELD", headers={"Authorization": ""}).status_code == 401


def test_a_customer_record_changes_audited_by_field_name_and_a_document_is_on_file_once(client, raw):
    open_account(client, "E1", **holder_fields("Ed Edit", document_number="E1"))
    open_account(client, "E2", **holder_fields("Other One", document_number="E2"))
    (ed,), = raw.rows("SELECT id FROM customers WHERE document_number = 'E1'")
    form = client.get(f"/teller/customers/{ed}/edit").get_data(as_text=True)
    assert 'value="Ed Edit"' in form
    fields = {k: v for k, v in holder_fields("Ed Edited", document_number="E1").items() if k != "holder"}
    assert client.post(f"/teller/customers/{ed}/edit", data=fields).status_code == 303
    assert raw.rows("SELECT detail FROM audit_log WHERE action = 'customer changed'") == [("changed: full_name",)]
    taken = client.post(f"/teller/customers/{ed}/edit", data={**fields, "document_number": "E2"})
    assert taken.status_code == 422 and "Another customer has this identity document" in taken.get_data(as_text=True)
    assert raw.scalar("SELECT document_number FROM customers WHERE id = ?", (ed,)) == "E1"
    again = open_account(client, "E3", **holder_fields("Copy Cat", document_number="E2"))
    assert again.status_code == 422 and "on file already" in again.get_data(as_text=True)
    assert raw.scalar("SELECT COUNT(*) FROM accounts WHERE account_number = 'E3'") == 0
    assert client.get("/teller/customers/99999").status_code == 404


def test_customer_data_is_never_logged(client, caplog):
    with caplog.at_level(logging.DEBUG):
        open_account(client, "LOG1", **holder_fields("Secret Name", document_number="SECRET99"))
        client.post("/", data={"query": "Secret"})
        client.get("/accounts/LOG1")
    text = caplog.text
    assert "Secret" not in text and "SECRET99" not in text


@pytest.mark.parametrize("details, message", [
    (customers.Details("Dup", "1990-01-01", "passport", "DUP", "US", "x", "+1 555 0100"), "on file already")])
def test_the_service_refuses_a_document_twice(db, run, details, message):
    run(customers.create_customer(db, details, "test", 0))
    with pytest.raises(customers.CustomerRefused, match=message):
        run(customers.create_customer(db, details, "test", 0))


def test_reading_customers_records_is_logged_by_who_and_which_never_what(app, client, raw):
    """Issue 19, point 12: a record viewed, a record opened for editing and a search that lists records are kept in
    the read-access log (who, when, which customer ids), which administrators read; a search that lists nobody is
    not a read."""
    open_account(client, "RD1", **holder_fields("Rhoda Reader", document_number="RR1"))
    open_account(client, "RD2", **holder_fields("Rhett Reader", document_number="RR2"))
    rhoda, rhett = (row[0] for row in raw.rows("SELECT id FROM customers ORDER BY id"))
    before = raw.scalar("SELECT COUNT(*) FROM customer_reads")
    assert client.get(f"/teller/customers/{rhoda}").status_code == 200
    assert client.get(f"/teller/customers/{rhett}/edit").status_code == 200
    assert client.post("/", data={"query": "reader"}).status_code == 200
    assert client.post("/", data={"query": "nobody at all"}).status_code == 200
    rows = raw.rows("SELECT actor, action, customer_ids FROM customer_reads ORDER BY id")[before:]
    assert rows == [("teller:tina", "record viewed", str(rhoda)), ("teller:tina", "record viewed", str(rhett)),
                    ("teller:tina", "search listed", f"{rhett},{rhoda}")]  # as listed, by name
    log = " ".join(" ".join(map(str, row)) for row in raw.rows("SELECT * FROM customer_reads"))
    assert "Rhoda" not in log and "RR1" not in log
    assert client.get("/admin/read-access").status_code == 403  # tina is a teller
    from conftest import add_teller, log_in
    ada = log_in(app, app.test_client(), add_teller(app, "ada", "admin"))
    page = ada.get("/admin/read-access").get_data(as_text=True)
    assert "search listed" in page and f'href="/teller/customers/{rhett}"' in page and "Rhoda" not in page
    with pytest.raises(raw.IntegrityError if not raw.is_postgres else Exception):
        raw.execute("DELETE FROM customer_reads")


def test_a_name_is_found_by_any_three_letters_of_it_or_by_its_first_one_or_two(app, db, run):
    """Issue 22: the search goes through an index fit for it (trigrams; a prefix for one or two letters), kept in
    step when a record's name changes."""
    from atm_web.customers import records
    made = {name: run(records.create_customer(db, records.Details(
        name, "1980-01-01", "passport", f"N{i}", "US", "1 Main Street", "+1 555 0100"), "teller:tina", 0)).id
        for i, name in enumerate(["Ada Lovelace", "Alan Turing", "Grace Hopper", "Wu Li"])}

    def found(text):
        return {c.full_name for c in run(records.search(db, text, "teller:tina", 0))}

    assert found("ovel") == {"Ada Lovelace"} and found("ING") == {"Alan Turing"}
    assert found("a") == {"Ada Lovelace", "Alan Turing"} and found("wu") == {"Wu Li"}  # the start only
    assert found("li") == set() and found("n2") == {"Grace Hopper"}  # "N2": her document number
    assert found('a"d') == set() and found("%%%") == set()
    run(records.update_customer(db, made["Grace Hopper"], records.Details(
        "Grace Brewster Murray", "1980-01-01", "passport", "N2", "US", "1 Main Street", "+1 555 0100"), "t", 0))
    assert found("hopper") == set() and found("brewster") == {"Grace Brewster Murray"}
