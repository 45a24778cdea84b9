"""Four eyes and customers in real Chromium, by labels and roles: a teller's 7,500.00 withdrawal waits for a
supervisor, who approves it in a second browser context; the teller's page then shows the receipt, approved by
them. A customer is found by part of a name. axe finds no serious or critical violation on the new pages."""
import pytest

from .server import Server
from .test_browser import (  # noqa: F401 (browser: the module's fixture)
    PASSWORD,
    Watched,
    browser,
    expect,
    fill_new_holder,
    first_admin,
    log_in,
    open_drawer,
    serious_violations,
)

pytestmark = pytest.mark.browser


def add_staff(page, server, username, role):
    page.goto(f"{server.base}/admin/tellers")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat password").fill(PASSWORD)
    page.get_by_label("Role", exact=True).select_option(role)
    page.get_by_role("button", name="Add teller").click()
    expect(page.get_by_role("status")).to_contain_text(f"{username} added ({role})")


@pytest.fixture
def branch(browser, tmp_path):  # noqa: F811 (the module's browser fixture)
    """A fresh server: its administrator ada (who also receives 10,000.00 into the vault), a teller tina and a
    supervisor sam, made on the admin page with their roles."""
    with Server(tmp_path / "atm.db") as server:
        server.base = f"http://127.0.0.1:{server.port}"
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        first_admin(page, server)
        add_staff(page, server, "tina", "teller")
        add_staff(page, server, "sam", "supervisor")
        page.goto(f"{server.base}/admin/vault/")
        page.get_by_label("Amount").fill("10000")
        page.get_by_label("Shipment reference").fill("CIT 1")
        page.get_by_role("button", name="Receive cash").click()
        expect(page.get_by_role("status")).to_contain_text("Cash received: 10,000.00")
        context.close()
        yield server


def test_a_large_withdrawal_waits_for_a_supervisor_who_approves_it_in_another_browser(browser, branch):  # noqa: F811
    assert branch.request("POST", "/accounts/W1/deposit", {"amount": 9000})[0] == 200
    teller_context = browser.new_context(viewport={"width": 1280, "height": 800})
    teller = Watched(teller_context.new_page())
    page = teller.page
    log_in(page, branch, ("tina", PASSWORD))
    open_drawer(page, branch, {"100.00": 100})
    page.goto(f"{branch.base}/teller/accounts/W1")
    expect(page.get_by_text("No holder on file")).to_be_visible()
    page.get_by_label("Amount").fill("7500")
    page.get_by_role("button", name="Withdraw").click()
    expect(page.get_by_role("status").first).to_contain_text("Waiting for a supervisor: request R-1")
    expect(page.get_by_role("heading", name="Request R-1")).to_be_visible()
    assert branch.request("GET", "/accounts/W1/balance")[1]["balance"] == 9000  # nothing posted

    supervisor_context = browser.new_context(viewport={"width": 1280, "height": 800})
    supervisor = Watched(supervisor_context.new_page())
    sam = supervisor.page
    log_in(sam, branch, ("sam", PASSWORD))
    sam.get_by_role("link", name="Approvals (1 waiting)").click()
    expect(sam.get_by_text("Cash withdrawal of 7,500.00 from account W1")).to_be_visible()
    sam.get_by_label("Note for R-1").fill("customer known to me")
    sam.get_by_role("button", name="Approve R-1").click()
    expect(sam.get_by_role("status")).to_contain_text("Request R-1 approved")
    expect(sam.get_by_text("Nothing waits for approval")).to_be_visible()

    page.get_by_role("link", name="Check again").click()  # no timed refresh: axe counts one as critical
    expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
    expect(page.get_by_text("Approved by", exact=True)).to_be_visible()
    expect(page.locator(".receipt-lines")).to_contain_text("sam")
    assert branch.request("GET", "/accounts/W1/balance")[1]["balance"] == 1500
    for context, watched in ((teller_context, teller), (supervisor_context, supervisor)):
        context.close()
        assert watched.problems == [], watched.problems


def test_a_customer_found_by_part_of_a_name_and_the_new_pages_pass_axe(browser, branch):  # noqa: F811
    from axe_playwright_python.sync_playwright import Axe
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    watched = Watched(context.new_page())
    page, axe, found = watched.page, Axe(), {}

    def check(name):
        if bad := serious_violations(axe, page):
            found[name] = bad

    log_in(page, branch, ("tina", PASSWORD))
    open_drawer(page, branch)
    page.get_by_role("link", name="Find account").click()
    page.get_by_label("Account number or holder's name").fill("HAM1")
    page.get_by_role("button", name="Look up").click()
    page.get_by_label("Amount").fill("25")
    page.get_by_role("button", name="Deposit").click()
    expect(page.get_by_role("heading", name="Open a new account?")).to_be_visible()
    check("confirm-open")
    fill_new_holder(page, "Margaret Hamilton", "MH1969")
    page.get_by_role("button", name="Open account and deposit").click()
    expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
    expect(page.locator(".receipt-lines")).to_contain_text("Margaret Hamilton")

    page.get_by_role("link", name="Find account").click()
    page.get_by_label("Account number or holder's name").fill("hamil")
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_role("link", name="Margaret Hamilton")).to_be_visible()
    expect(page.get_by_role("link", name="HAM1")).to_be_visible()
    check("search-results")
    page.get_by_role("link", name="Margaret Hamilton").click()
    expect(page.get_by_role("heading", name="Margaret Hamilton")).to_be_visible()
    check("customer")
    page.goto(f"{branch.base}/teller/accounts/HAM1/holders")
    check("holders")
    page.goto(f"{branch.base}/teller/accounts/HAM1")
    page.get_by_label("Own overdraft limit").fill("50")
    page.get_by_role("button", name="Set limit").click()
    expect(page.get_by_role("heading", name="Request R-1")).to_be_visible()
    check("request")
    page.get_by_role("link", name="My requests").first.click()
    check("my-requests")
    context.close()

    admin_context = browser.new_context(viewport={"width": 1280, "height": 800})
    admin = Watched(admin_context.new_page())
    page = admin.page
    log_in(page, branch, ("ada", PASSWORD))
    page.get_by_role("link", name="Approvals (1 waiting)").click()
    check("approvals")
    page.goto(f"{branch.base}/admin/large-cash/")
    check("large-cash")
    admin_context.close()
    assert found == {}
    assert watched.problems == [] and admin.problems == []
