"""Admin > ATMs (atm_pages.py): an administrator registers an ATM, enters a replenishment's blind count and load
(the page shows no expected figure), a supervisor confirms it on Approvals, and the ATM's page shows its expected
cash and notes, the last replenishment and its journal (with a CSV)."""
import re

import pytest

from atm_web.cash import vault

from conftest import add_teller, log_in


@pytest.fixture
def staff(app, db, run):
    ada, sam = add_teller(app, "ada", "admin"), add_teller(app, "sam", "supervisor")
    assert run(vault.ship_cash(db, "in", 1_000_000, "CIT 1", ada))
    return log_in(app, app.test_client(), ada), log_in(app, app.test_client(), sam)


def test_an_atm_registered_replenished_blind_and_confirmed_by_a_second_person(staff, raw):
    ada, sam = staff
    listing = ada.get("/admin/atms/").get_data(as_text=True)
    assert "No ATM registered yet" in listing and '<option value="5000">50.00</option>' in listing
    assert '<option value="25">' not in listing  # coins are not cassette notes
    refused = ada.post("/admin/atms/", data={"name": "", "location": "Lobby", "cassette_1": "5000"})
    assert refused.status_code == 422 and raw.scalar("SELECT COUNT(*) FROM atms") == 0
    done = ada.post("/admin/atms/", data={"name": "Lobby", "location": "Main Street", "cassette_1": "5000",
                                          "cassette_2": "2000", "cassette_3": "", "cassette_4": ""})
    assert done.status_code == 303 and done.location == "/admin/atms/1"
    again = ada.post("/admin/atms/", data={"name": "Lobby", "location": "Elsewhere", "cassette_1": "5000"})
    assert again.status_code == 422 and "registered already" in again.get_data(as_text=True)
    form = ada.get("/admin/atms/1/replenish").get_data(as_text=True)
    assert "Notes left in cassette 1 (50.00)" in form and "Retract bin: count of 20.00" in form
    assert "Expected" not in form and "expected cash" not in form.lower()  # blind
    bad = ada.post("/admin/atms/1/replenish", data={"left_1": "-3", "load_1": "x"})
    assert bad.status_code == 422 and raw.scalar("SELECT COUNT(*) FROM atm_replenishments") == 0
    entered = ada.post("/admin/atms/1/replenish", data={"left_1": "", "left_2": "", "load_1": "100", "load_2": "50"})
    assert re.fullmatch(r"/teller/requests/\d+", entered.location)
    approval_id = entered.location.rsplit("/", 1)[1]
    assert "Confirm the replenishment of ATM 1 (Lobby): counted 0.00, loading 6,000.00" in sam.get(
        "/approvals/").get_data(as_text=True)
    assert ada.post(f"/approvals/{approval_id}", data={"note": "mine", "approve": "y"}).status_code == 403
    assert sam.post(f"/approvals/{approval_id}", data={"note": "counted with ada", "approve": "y"}).status_code == 303
    page = ada.get("/admin/atms/1").get_data(as_text=True)
    assert '<p class="balance">6,000.00</p>' in page and re.search(r"Confirmed</dt><dd>[^<]* by sam</dd>", page)
    assert '<td class="num" data-label="Expected notes">100</td>' in page
    assert "<dt>Variance</dt><dd>0.00</dd>" in page
    assert "replenishment entered" in page and "replenished" in page and "R1: done" in page
    csv_text = ada.get("/admin/atms/1/journal.csv").get_data(as_text=True)
    assert csv_text.splitlines()[0] == '"atm","trace","at","event","detail","by","hash"'
    assert [line.split(",")[3] for line in csv_text.splitlines()[1:]] == ['"registered"', '"replenishment entered"',
                                                                          '"replenished"']
    assert "ATM 1 (Lobby)" in ada.get("/admin/atms/").get_data(as_text=True)
    assert ada.get("/admin/atms/9").status_code == 303  # an unknown ATM: back to the list, told so


def test_the_json_api_lists_atms_for_an_admin_token_only(app, staff):
    from conftest import add_token, bearer
    ada, sam = staff
    ada.post("/admin/atms/", data={"name": "Lobby", "location": "Main Street", "cassette_1": "5000"})
    entered = ada.post("/admin/atms/1/replenish", data={"left_1": "0", "load_1": "20"})
    sam.post(f"/approvals/{entered.location.rsplit('/', 1)[1]}", data={"note": "ok", "approve": "y"})
    client, admin = app.test_client(), bearer(add_token(app, "adm", admin=True))
    listed = client.get("/atms", headers=admin)
    assert listed.status_code == 200
    (atm,) = listed.get_json()["atms"]
    assert atm == client.get("/atms/1", headers=admin).get_json()
    assert {k: atm[k] for k in ("atm_id", "name", "account_number", "expected_cash", "cassettes")} == {
        "atm_id": 1, "name": "Lobby", "account_number": "@atm-1", "expected_cash": 1000,
        "cassettes": [{"position": 1, "denomination": 50, "notes": 20}]}
    last = atm["last_replenishment"]
    assert (last["status"], last["counted"], last["loaded"], last["expected"], last["variance"],
            last["entered_by"], last["confirmed_by"]) == ("done", 0, 1000, 0, 0, "ada", "sam")
    assert client.get("/atms/9", headers=admin).get_json() == {"detail": "No such ATM."}
    assert client.get("/atms/9", headers=admin).status_code == 404
    assert client.get("/atms", headers=bearer(add_token(app, "rw"))).status_code == 403
    assert client.get("/atms").status_code == 401


def test_the_journal_csv_keeps_free_text_from_running_as_a_formula(staff):
    ada, _ = staff
    ada.post("/admin/atms/", data={"name": "=HYPERLINK(1)", "location": "Hall; =1+1", "cassette_1": "5000"})
    row = ada.get("/admin/atms/1/journal.csv").get_data(as_text=True).splitlines()[1]
    assert "\"'=HYPERLINK(1), Hall; '=1+1; cassettes 50.00; dispenser: screen\"" in row
