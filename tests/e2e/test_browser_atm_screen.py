"""The ATM screen in real Chromium, by labels and roles, at 1024x768 and 768x1024: an administrator pairs a kiosk's
browser; a customer's first use (the PIN-setting code, the new PIN twice), then a whole session by keyboard (the card
reader types the number and Enter): balance, an amount the cassettes cannot make refused with what they can, fast
cash 60.00, the card then the cash, the receipt; the ledger and the cassettes moved; three wrong PINs keep the card
and a supervisor's approval unblocks it; the idle timeout returns to Welcome and Back shows no balance. On every
screen: axe finds no serious or critical violation, nothing scrolls, every target is 44x44 px or more, no console
error (the CSP holds: the script is a file). Screenshots land in screenshots/ (git-ignored)."""
import re

import pytest

from atm_web.cash import atms, vault
from atm_web.cash.replenishment import Count
from atm_web.customers import cards, holders
from atm_web.customers.records import DETAIL_FIELDS, Details
from atm_web.ledger import accounts
from atm_web.serving import aio

from .server import Server
from .test_browser import SHOTS, Watched, browser, expect, log_in, serious_violations  # noqa: F401 (the fixture)
from conftest import PASSWORD, add_teller, close_app, holder_fields, load_atm, make_app

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]  # the screen's engine work is in the other tests
KIOSK_SIZES = {"landscape": (1024, 768), "portrait": (768, 1024)}
IDLE = 15  # ATM_IDLE_SECONDS for this server: the least allowed


@pytest.fixture
def kiosk_branch(database, tmp_path, clock):
    """Holly (C1 2,000.00, C2) with a new card; ATM 1 loaded with 50s and 20s (100 each); ada (admin), tina
    (teller), sam (supervisor); the server."""
    app = make_app(database, CLOCK=clock, PIN_KEY="e2e-pin-key-0123456789")
    try:
        db = app.extensions["atm_db"]
        aio.run(accounts.deposit(db, "C1", 200_000, "test"))
        aio.run(accounts.deposit(db, "C2", 10_000, "test"))
        fields = holder_fields(document_number="KB1")
        holly = aio.run(holders.link_holder(db, "C1", None, Details(**{n: fields[n] for n in DETAIL_FIELDS}), "test",
                                            clock()))
        aio.run(holders.link_holder(db, "C2", holly.id, None, "test", clock()))
        ada, sam = add_teller(app, "ada", "admin"), add_teller(app, "sam", "supervisor")
        add_teller(app, "tina", "teller")
        issued = aio.run(cards.issue_card(db, holly.id, ["C1", "C2"], "C1", ada, clock()))
        aio.run(vault.ship_cash(db, "in", 2_000_000, "CIT 1", ada))
        atm = aio.run(atms.register_atm(db, "Lobby", "Main Street", [5000, 2000], ada, clock()))
        load_atm(db, aio.run, atm, ada, sam, clock, Count({1: 0, 2: 0}, {}, {}), {1: 100, 2: 100})
        customer = holly.id
    finally:
        close_app(app)
    with Server(database, log_path=tmp_path / "server.log", ATM_IDLE_SECONDS=str(IDLE)) as server:
        server.base = f"http://127.0.0.1:{server.port}"
        yield server, issued, customer


class Screens:
    """Each screen shown: axe, no scrolling either way, targets of 44x44 px or more; a screenshot."""

    def __init__(self, page, size):
        from axe_playwright_python.sync_playwright import Axe
        self.page, self.size, self.axe, self.found = page, size, Axe(), {}

    def check(self, name, page=None):
        page = page or self.page
        if bad := serious_violations(self.axe, page):
            self.found[name] = bad
        scroll = page.evaluate("[document.documentElement.scrollWidth - innerWidth, "
                               "document.documentElement.scrollHeight - innerHeight]")
        assert scroll[0] <= 0 and scroll[1] <= 0, f"{name} scrolls by {scroll} at {self.size}"
        small = page.evaluate("""[...document.querySelectorAll('button, input, a')]
            .filter(e => e.offsetParent !== null && e.type !== 'hidden')
            .map(e => [e.textContent.trim() || e.name || e.id, e.getBoundingClientRect()])
            .filter(([, r]) => r.width < 44 || r.height < 44).map(([n]) => n)""")
        assert small == [], f"{name}: targets under 44x44 px at {self.size}: {small}"
        assert page.locator("a").count() == 0, f"{name}: a link leaves the ATM"
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / f"atm-{name}-{self.size[0]}x{self.size[1]}.png"))


def pair(browser, server, size, check):  # noqa: F811 (the fixture, passed on)
    """An administrator's one-time link opened in a new kiosk browser: first "not an ATM", then paired. `check`
    is called with (page, name) on each screen the kiosk shows before Welcome."""
    admin = browser.new_context(viewport={"width": 1280, "height": 800})
    page = admin.new_page()
    log_in(page, server, ("ada", PASSWORD))
    page.goto(f"{server.base}/admin/atms/1")
    page.get_by_role("button", name="Pair a screen").click()
    expect(page.get_by_role("heading", name="Pair a screen with ATM 1 (Lobby)")).to_be_visible()
    link = page.locator("code").inner_text()
    admin.close()
    kiosk = browser.new_context(viewport={"width": size[0], "height": size[1]})
    stranger = kiosk.new_page()  # not watched: the page's own 403 is a console error to Chromium
    stranger.goto(f"{server.base}/atm/")
    expect(stranger.get_by_role("heading", name="This screen is not an ATM")).to_be_visible()
    check(stranger, "not-an-atm")
    stranger.close()
    watched = Watched(kiosk.new_page())
    watched.page.goto(link)
    expect(watched.page.get_by_role("heading", name="Pair this screen with ATM 1 (Lobby)?")).to_be_visible()
    check(watched.page, "pairing")
    watched.page.get_by_role("button", name="Pair this screen").click()
    expect(watched.page.get_by_role("heading", name="Welcome")).to_be_visible()
    return kiosk, watched


def tab_to(page, name, most=40):
    """Tab until the button named `name` has the focus (at most `most` presses)."""
    for _ in range(most):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == name:
            return
    raise AssertionError(f"{name} cannot be reached by Tab")


def insert_card(page, number):
    page.get_by_role("button", name="Insert your card").click()
    expect(page.get_by_label("Card number")).to_be_focused()  # the reader types into it
    page.keyboard.type(number)
    page.keyboard.press("Enter")


@pytest.mark.parametrize("size", list(KIOSK_SIZES.values()), ids=list(KIOSK_SIZES))
def test_a_customers_session_at_the_atm_screen(browser, kiosk_branch, raw, size):  # noqa: F811
    server, issued, customer = kiosk_branch
    screens = Screens(None, size)
    kiosk, watched = pair(browser, server, size, lambda page, name: screens.check(name, page))
    page = screens.page = watched.page
    screens.check("welcome")
    page.goto(f"{server.base}/atm/")
    # first use: the PIN-setting code, then the new PIN twice
    insert_card(page, issued.number)
    expect(page.get_by_role("heading", name="Choose your PIN")).to_be_visible()
    screens.check("first-pin")
    page.get_by_label("PIN-setting code").fill(issued.code)
    page.get_by_label("New PIN (4 to 6 digits)").fill("2468")
    page.get_by_label("New PIN again").fill("2468")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="What would you like to do?")).to_be_visible()
    screens.check("menu")
    page.keyboard.press("Escape")  # Cancel, from the keyboard
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Please take your card")

    # a whole session, by keyboard where a customer would type
    insert_card(page, issued.number)
    expect(page.get_by_role("heading", name="Enter your PIN")).to_be_visible()
    expect(page.get_by_label("PIN")).to_be_focused()
    page.keyboard.type("2468")
    screens.check("pin")
    page.get_by_label("PIN").press("Enter")
    page.get_by_role("button", name="Balance").click()
    expect(page.get_by_role("heading", name="Your balance")).to_be_visible()
    expect(page.locator(".figures")).to_contain_text("2,000.00")
    screens.check("balance")
    page.get_by_role("button", name="Back to the menu").click()
    page.get_by_role("button", name="Fast cash or another amount").click()
    screens.check("cash")
    page.get_by_label("Another amount").fill("30")
    page.get_by_role("button", name="Withdraw").click()
    expect(page.get_by_role("status")).to_contain_text("This ATM cannot pay 30.00. It can pay 20.00 or 40.00.")
    page.get_by_role("button", name="60.00").click()
    expect(page.get_by_role("heading", name="Take your card")).to_be_visible()
    screens.check("take-card")
    page.get_by_role("button", name="I have taken my card").click()
    expect(page.get_by_role("heading", name="Take your cash")).to_be_visible()
    screens.check("take-cash")
    page.get_by_role("button", name="I have taken my cash").click()
    receipt = page.get_by_role("region", name="Receipt")
    expect(receipt).to_contain_text("Withdrawal 60.00")
    expect(receipt).to_contain_text(f"Card •••• {issued.number[-4:]}")
    expect(receipt).to_contain_text(re.compile(r"Trace \d+"))
    screens.check("receipt")
    page.get_by_role("button", name="No receipt").click()
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
    assert raw.rows("SELECT balance_cents FROM accounts WHERE account_number = 'C1'") == [(194_000,)]
    assert raw.rows("SELECT notes, reserved FROM atm_cassettes ORDER BY position") == [(100, 0), (97, 0)]

    # the idle timeout: the warning, then Welcome; Back shows no balance
    insert_card(page, issued.number)
    expect(page.get_by_label("PIN")).to_be_focused()
    page.keyboard.type("2468")
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Balance").click()
    expect(page.get_by_role("button", name="More time")).to_be_visible(timeout=(IDLE - 5 + 3) * 1000)
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible(timeout=12_000)
    page.go_back()
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
    assert "2,000.00" not in page.content() and "1,940.00" not in page.content()

    # keyboard only: Welcome's button has the focus, the card and PIN are typed, each choice reached by Tab
    page.keyboard.press("Enter")
    expect(page.get_by_label("Card number")).to_be_focused()
    page.keyboard.type(issued.number)
    page.keyboard.press("Enter")
    expect(page.get_by_label("PIN")).to_be_focused()
    page.keyboard.type("2468")
    page.keyboard.press("Enter")
    for choice, heading, name in (("Deposit", "Count your notes", "deposit"),
                                  ("Mini-statement", "Your last 2 transactions", "statement"),
                                  ("Transfer", "Transfer from C1", "transfer"),
                                  ("Change PIN", "Change your PIN", "pin-change"),
                                  ("Another account", "Which account?", "accounts")):
        expect(page.get_by_role("heading", name="What would you like to do?")).to_be_visible()
        tab_to(page, choice)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
        screens.check(name)
        tab_to(page, "Back to the menu")
        page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="What would you like to do?")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()

    # three wrong PINs keep the card
    for attempt in range(3):
        insert_card(page, issued.number)
        page.get_by_label("PIN").fill("9753")
        page.get_by_role("button", name="Enter").click()
        expect(page.get_by_role("status")).to_contain_text(
            "Your card has been kept. Please contact your branch." if attempt == 2 else "Card or PIN not accepted.")
    screens.check("kept")
    kiosk.close()
    assert screens.found == {} and watched.problems == [], (screens.found, watched.problems)

    # a supervisor's approval unblocks it: tina asks, sam approves
    staff = browser.new_context(viewport={"width": 1280, "height": 800})
    tina = staff.new_page()
    log_in(tina, server, ("tina", PASSWORD))
    tina.goto(f"{server.base}/teller/customers/{customer}")
    tina.get_by_label(f"Reason for unblocking card •••• {issued.number[-4:]}").fill("customer in branch with ID")
    tina.get_by_role("button", name="Ask to unblock").click()
    other = browser.new_context(viewport={"width": 1280, "height": 800})
    sam = other.new_page()
    log_in(sam, server, ("sam", PASSWORD))
    sam.get_by_role("link", name="Approvals (1 waiting)").click()
    approve = sam.get_by_role("button", name=re.compile(r"Approve R-\d+"))
    reference = approve.inner_text().split()[-1]  # "Approve R-n"
    sam.get_by_label(f"Note for {reference}").fill("met the customer")
    approve.click()
    expect(sam.get_by_role("status")).to_contain_text("approved")
    staff.close()
    other.close()
    assert raw.rows("SELECT status, pin_tries FROM cards") == [("active", 0)]
    log = server.log_path.read_text()
    assert issued.number not in log and issued.code not in log  # nor in a URL: every one is logged
