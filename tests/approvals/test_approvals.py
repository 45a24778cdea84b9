"""Four eyes (approvals.py, approval_decisions.py, approval_pages.py): what a teller asks for on the teller screen
that needs a second person is held, writes nothing to the ledger, and is carried out exactly once by a supervisor
or administrator other than them within 15 minutes; a decline or an expiry never posts."""
import asyncio
import re
import uuid
from dataclasses import replace

import pytest

from atm_web.approvals import decisions as approval_decisions
from atm_web.approvals import requests as approvals
from atm_web.cash import drawers
from atm_web.ledger.refusals import DrawerNotOpen
from atm_web.serving import aio
from atm_web.staff import login_sessions, tellers
from atm_web.staff.refusals import NoLongerAuthorised

from conftest import add_teller, add_token, bearer, close_app, decide, log_in, make_app, open_drawer

LIMIT_CENTS = 500_000  # APPROVAL_CASH_LIMIT's default, 5000.00


def withdraw(client, number, amount, **extra):
    return client.post("/teller/transactions", data={"account_number": number, "amount": amount,
                                                     "withdraw": "Withdraw", "form_key": uuid.uuid4().hex, **extra})


@pytest.fixture
def branch(app):
    """tina (a teller) with 20,000.00 in her drawer, sam (a supervisor), ada (an admin), and account A1 holding
    10,000.00 (from the API: no cash)."""
    people = {name: add_teller(app, name, role) for name, role in
              (("tina", "teller"), ("sam", "supervisor"), ("ada", "admin"), ("sue", "supervisor"))}
    clients = {name: log_in(app, app.test_client(), teller) for name, teller in people.items()}
    open_drawer(app, people["tina"], 2_000_000)
    open_drawer(app, people["sam"], 1_000_000)
    assert app.test_client().post("/accounts/A1/deposit", json={"amount": 10000},
                                  headers=bearer(add_token(app))).status_code == 200
    return people, clients


def customer_rows(raw):
    return raw.rows("SELECT id, account_number, kind, amount_cents FROM journal WHERE account_number NOT LIKE '@%' "
                    "ORDER BY id")


def test_a_withdrawal_above_the_limit_is_held_and_writes_nothing_while_one_at_the_limit_posts(branch, raw):
    _, clients = branch
    tina = clients["tina"]
    before, audit, rows = customer_rows(raw), raw.scalar("SELECT COUNT(*) FROM audit_log"), raw.all_rows_count()
    held = withdraw(tina, "A1", "5000.01")
    assert held.status_code == 303 and re.fullmatch(r"/teller/requests/\d+", held.location)
    page = tina.get(held.location).get_data(as_text=True)
    assert "Waiting for a supervisor" in page and "R-" in page and "5,000.01" in page
    assert customer_rows(raw) == before and raw.all_rows_count() == rows
    assert raw.scalar("SELECT COUNT(*) FROM audit_log") == audit + 1  # the request, audited
    assert raw.rows("SELECT kind, status, amount_cents FROM approvals") == [("withdrawal", "pending", 500001)]
    at_limit = withdraw(tina, "A1", "5000.00")  # exactly the limit is not above it
    assert at_limit.status_code == 303 and "/teller/receipts/" in at_limit.location
    assert len(customer_rows(raw)) == len(before) + 1


def test_a_form_sent_twice_holds_one_request(branch, raw):
    _, clients = branch
    key = uuid.uuid4().hex
    first = withdraw(clients["tina"], "A1", "7500", form_key=key)
    assert withdraw(clients["tina"], "A1", "7500", form_key=key).location == first.location
    assert raw.scalar("SELECT COUNT(*) FROM approvals") == 1


def test_nobody_approves_their_own_request_and_a_teller_approves_nothing(branch, raw):
    _, clients = branch
    own = withdraw(clients["sam"], "A1", "6000")  # sam's drawer is open: he asks too
    refused = decide(clients["sam"], own)
    assert refused.status_code == 403 and "Nobody approves their own request" in refused.get_data(as_text=True)
    asked = withdraw(clients["tina"], "A1", "6000")
    assert decide(clients["tina"], asked).status_code == 403  # a teller decides nothing
    assert clients["tina"].get("/approvals/").status_code == 403
    assert raw.scalar("SELECT COUNT(*) FROM approvals WHERE status = 'pending'") == 2
    assert raw.scalar("SELECT COUNT(*) FROM journal WHERE kind = 'withdrawal'") == 0


def test_an_approval_posts_once_with_the_values_entered_even_when_clicked_twice(branch, raw):
    _, clients = branch
    asked = withdraw(clients["tina"], "A1", "7500")
    bar = clients["sam"].get("/approvals/").get_data(as_text=True)
    assert "Approvals <span class=\"count\">(1" in bar and "Cash withdrawal of 7,500.00 from account A1" in bar
    assert "tina" in bar and "account A1</a>: no holder on file" in bar  # what, for whom, by whom
    assert decide(clients["sam"], asked, note="customer known to me").status_code == 303
    again = decide(clients["sam"], asked)
    assert again.status_code == 303
    assert "approved already by sam" in clients["sam"].get(again.location).get_data(as_text=True)
    assert decide(clients["ada"], asked).status_code == 303  # a second approver, later: nothing more either
    assert raw.rows("SELECT account_number, kind, amount_cents, actor FROM journal WHERE kind = 'withdrawal'") == [
        ("A1", "withdrawal", 750000, "teller:tina")]  # in tina's name, through her drawer
    drawer = raw.scalar("SELECT account_number FROM journal WHERE entry_id = (SELECT entry_id FROM journal WHERE "
                        "kind = 'withdrawal') AND account_number LIKE '@drawer-%'")
    assert drawer == raw.scalar("SELECT account_number FROM drawer_sessions d JOIN tellers t ON t.id = d.teller_id "
                                "WHERE t.username = 'tina'")
    shown = clients["tina"].get(asked.location)
    assert shown.status_code == 303 and "/teller/receipts/" in shown.location
    receipt = clients["tina"].get(shown.location).get_data(as_text=True)
    assert "Approved by</dt><dd>sam" in receipt and "7,500.00" in receipt
    audit = raw.rows("SELECT actor, action, detail FROM audit_log WHERE action LIKE 'approval%' ORDER BY id")
    assert [(actor, action) for actor, action, _ in audit] == [("teller:tina", "approval requested"),
                                                               ("teller:sam", "approval approved")]
    assert "requested by tina" in audit[1][2] and "customer known to me" in audit[1][2]


def test_two_supervisors_approving_at_once_post_once(app, branch, raw, run):
    people, clients = branch
    asked = withdraw(clients["tina"], "A1", "8000")
    approval_id = int(asked.location.rsplit("/", 1)[1])
    db, now = app.extensions["atm_db"], app.config["CLOCK"]()

    async def both():
        return await asyncio.gather(*(approval_decisions.decide(db, approval_id, people[name], True, "ok", now=now,
                                                                threshold_cents=10**12) for name in ("sam", "sue")),
                                    return_exceptions=True)

    outcomes = run(both())
    assert sorted(type(o).__name__ for o in outcomes) == ["ApprovalRefused", "Decision"]
    assert raw.scalar("SELECT COUNT(*) FROM journal WHERE kind = 'withdrawal'") == 1
    assert raw.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'approval approved'") == 1


def test_a_request_expires_after_15_minutes_on_the_clock_and_never_posts(branch, raw, clock):
    _, clients = branch
    in_time = withdraw(clients["tina"], "A1", "6000")
    late = withdraw(clients["tina"], "A1", "6500")
    clock.advance(15 * 60 - 1)
    assert decide(clients["sam"], in_time).status_code == 303  # 14:59 after: still in time
    clock.advance(1)
    expired = decide(clients["sam"], late)  # at 15:00 exactly: too late (the decision checks, not only a sweep)
    assert "had expired: nothing was posted" in clients["sam"].get(expired.location).get_data(as_text=True)
    assert "Nothing waits for approval" in clients["sam"].get("/approvals/").get_data(as_text=True)
    assert raw.rows("SELECT amount_cents FROM journal WHERE kind = 'withdrawal'") == [(600000,)]
    assert raw.rows("SELECT status FROM approvals ORDER BY id") == [("approved",), ("expired",)]
    page = clients["tina"].get(late.location).get_data(as_text=True)
    assert "Expired" in page and "Nothing was recorded" in page
    assert raw.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'approval expired'") == 1


def test_a_declined_request_never_posts_and_the_teller_sees_why(branch, raw):
    _, clients = branch
    asked = withdraw(clients["tina"], "A1", "9000")
    assert decide(clients["sam"], asked, approve=False, note="signature does not match").status_code == 303
    assert decide(clients["ada"], asked).status_code == 303  # refused: declined already
    page = clients["tina"].get(asked.location).get_data(as_text=True)
    assert "Declined by sam: signature does not match" in page
    assert "declined" in clients["tina"].get("/teller/requests/").get_data(as_text=True)
    assert raw.scalar("SELECT COUNT(*) FROM journal WHERE kind = 'withdrawal'") == 0
    audit = raw.rows("SELECT actor, action FROM audit_log WHERE action LIKE 'approval%' ORDER BY id")
    assert audit == [("teller:tina", "approval requested"), ("teller:sam", "approval declined")]


def test_a_decision_needs_a_note_and_a_refused_approval_leaves_the_request_waiting(app, branch, raw, run):
    people, clients = branch
    asked = withdraw(clients["tina"], "A1", "9500")
    assert decide(clients["sam"], asked, note="  ").status_code == 303
    assert raw.scalar("SELECT status FROM approvals") == "pending"
    db = app.extensions["atm_db"]
    run(drawers.close_drawer(db, people["tina"], {10000: 200}, 0))  # her drawer closed: no cash to pay out
    approval_id = int(asked.location.rsplit("/", 1)[1])
    with pytest.raises(DrawerNotOpen):
        run(approval_decisions.decide(db, approval_id, people["sam"], True, "ok", now=app.config["CLOCK"](),
                                      threshold_cents=10**12))
    assert raw.scalar("SELECT status FROM approvals WHERE id = ?", (approval_id,)) == "pending"
    assert raw.scalar("SELECT COUNT(*) FROM journal WHERE kind = 'withdrawal'") == 0


def test_a_drawer_sign_off_is_held_for_a_supervisor_other_than_its_teller(app, branch, raw, run):
    people, clients = branch
    db = app.extensions["atm_db"]
    run(drawers.close_drawer(db, people["tina"], {10000: 190}, 500, now=app.config["CLOCK"]()))  # 1,000.00 short
    held = raw.rows("SELECT id, kind, status, requested_by FROM approvals")
    assert [(k, s) for _, k, s, _ in held] == [("drawer_signoff", "pending")]
    page = clients["sam"].get("/approvals/").get_data(as_text=True)
    assert "Sign-off of drawer" in page and "variance -1,000.00" in page
    approval_id = held[0][0]
    mine = clients["tina"].post(f"/approvals/{approval_id}", data={"note": "mine", "approve": "y"})
    assert mine.status_code == 403
    done = clients["sam"].post(f"/approvals/{approval_id}", data={"note": "recounted: a bundle missing",
                                                                  "approve": "y"})
    assert done.status_code == 303
    assert raw.rows("SELECT status, signed_off_by, signoff_note FROM drawer_sessions WHERE teller_id = ?",
                    (people["tina"].id,)) == [("closed", "sam", "recounted: a bundle missing")]
    assert raw.scalar("SELECT status FROM approvals") == "approved"


def test_a_sign_off_request_that_expired_is_asked_again_from_my_drawer(app, branch, raw, run, clock):
    people, clients = branch
    run(drawers.close_drawer(app.extensions["atm_db"], people["tina"], {10000: 190}, 500, now=clock()))
    clock.advance(15 * 60)
    page = clients["tina"].get("/teller/drawer/").get_data(as_text=True)
    assert "Ask again" in page
    again = clients["tina"].post("/teller/drawer/sign-off-request", data={})
    assert again.status_code == 303 and "/teller/requests/" in again.location
    twice = clients["tina"].post("/teller/drawer/sign-off-request", data={})
    assert "waiting already" in clients["tina"].get(twice.location).get_data(as_text=True)
    assert raw.rows("SELECT status FROM approvals ORDER BY id") == [("expired",), ("pending",)]


def test_the_approval_count_is_shown_only_to_approvers_and_counts_others_requests(app, branch):
    people, clients = branch
    withdraw(clients["tina"], "A1", "6000")
    withdraw(clients["sam"], "A1", "6000")
    assert "Approvals" not in clients["tina"].get("/teller/requests/").get_data(as_text=True)
    assert "(1 waiting)" in clients["sam"].get("/teller/requests/").get_data(as_text=True)  # tina's, not his own
    assert "(2 waiting)" in clients["ada"].get("/teller/requests/").get_data(as_text=True)
    assert aio.run(approvals.count_waiting_for(app.extensions["atm_db"], people["ada"].id,
                                               app.config["CLOCK"]())) == 2


@pytest.mark.postgresql_only
def test_two_supervisors_on_two_servers_approving_at_once_post_once(app, branch, database, raw, run, clock):
    """The same race across two app servers sharing one PostgreSQL database: the write lock orders them."""
    people, clients = branch
    approval_id = int(withdraw(clients["tina"], "A1", "8000").location.rsplit("/", 1)[1])
    other = make_app(database, CLOCK=clock)
    try:
        async def both():
            return await asyncio.gather(*(approval_decisions.decide(
                server.extensions["atm_db"], approval_id, people[name], True, "ok", now=clock(),
                threshold_cents=10**12) for server, name in ((app, "sam"), (other, "sue"))), return_exceptions=True)

        outcomes = run(both())
    finally:
        close_app(other)
    assert sorted(type(o).__name__ for o in outcomes) == ["ApprovalRefused", "Decision"]
    assert raw.scalar("SELECT COUNT(*) FROM journal WHERE kind = 'withdrawal'") == 1


# Issue 19, point 3: decisions by people who just lost the right

def test_approvals_in_flight_when_their_supervisor_is_demoted_none_commits_after_the_demotion(app, branch, raw, run):
    """20 approvals and the demotion of their supervisor race; each decision re-checks, in its own write, that its
    maker still holds the role and an open session: none is written after the demotion's commit."""
    people, _ = branch
    db, now = app.extensions["atm_db"], app.config["CLOCK"]()
    asked = [run(approvals.hold(db, "overdraft_limit", people["tina"], now, None, account_number="A1",
                                limit_cents=100_000 + i)).id for i in range(20)]
    session_id = run(login_sessions.start_session(db, people["sam"].id, now))
    sam = replace(people["sam"], session_hash=login_sessions.sha256(session_id))

    async def race():
        decisions = [approval_decisions.decide(db, approval_id, sam, True, "ok", now=now, threshold_cents=10**12)
                     for approval_id in asked]
        demotion = tellers.set_role(db, sam.id, "teller", "teller:ada", now)
        return await asyncio.gather(*decisions[:10], demotion, *decisions[10:], return_exceptions=True)

    outcomes = run(race())
    refused = [o for o in outcomes if isinstance(o, NoLongerAuthorised)]
    assert refused and all(isinstance(o, (approval_decisions.Decision, NoLongerAuthorised, tellers.Teller))
                           for o in outcomes)
    (demoted_at,), = raw.rows("SELECT id FROM audit_log WHERE action = 'role set to teller'")
    assert raw.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'approval approved' AND id > ?",
                      (demoted_at,)) == 0
    approved = raw.scalar("SELECT COUNT(*) FROM approvals WHERE status = 'approved'")
    assert approved == len(outcomes) - 1 - len(refused)
    assert raw.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'overdraft limit set'") == approved


def test_an_ended_session_decides_nothing_even_with_the_role(app, branch, raw, run):
    people, clients = branch
    approval_id = int(withdraw(clients["tina"], "A1", "6000").location.rsplit("/", 1)[1])
    db, now = app.extensions["atm_db"], app.config["CLOCK"]()
    session_id = run(login_sessions.start_session(db, people["sam"].id, now))
    run(login_sessions.end_session(db, session_id, now))  # logged out in another tab
    with pytest.raises(NoLongerAuthorised):
        run(approval_decisions.decide(db, approval_id, replace(people["sam"], session_hash=login_sessions.sha256(
            session_id)), True, "ok", now=now, threshold_cents=10**12))
    run(tellers.set_role(db, people["sue"].id, "teller", "teller:ada", now))  # and a role taken away: whatever
    with pytest.raises(NoLongerAuthorised):  # the caller's copy of the approver says (no session here)
        run(approval_decisions.decide(db, approval_id, people["sue"], True, "ok", now=now, threshold_cents=10**12))
    assert raw.rows("SELECT status FROM approvals") == [("pending",)]


def test_a_deactivated_tellers_waiting_requests_are_declined_and_never_paid(app, branch, raw):
    people, clients = branch
    held = withdraw(clients["tina"], "A1", "7000")
    assert clients["ada"].post(f"/admin/tellers/{people['tina'].id}/deactivate", data={"confirm": "yes"}) \
        .status_code == 303
    assert raw.rows("SELECT status, decided_by, decision_note FROM approvals") == [
        ("declined", "system", "its requester was deactivated")]
    assert ("approval declined", "system") in raw.rows("SELECT action, actor FROM audit_log")
    decide(clients["sam"], held)
    assert "declined already" in clients["sam"].get("/approvals/").get_data(as_text=True)
    assert raw.scalar("SELECT COUNT(*) FROM journal WHERE kind = 'withdrawal'") == 0
