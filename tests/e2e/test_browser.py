"""A teller's day in real Chromium against the real server: found by labels and roles, as a person would.

Where Chromium is missing the tests skip with a line saying how to install it; with ATM_REQUIRE_BROWSER=1 (set
by .ci/run) a missing browser fails instead. Screenshots land in screenshots/ (git-ignored).
"""
import contextlib
import os
import re
import shutil
from pathlib import Path

import pytest

from .server import ROOT, Server

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]
SHOTS = ROOT / "screenshots"
PASSWORD = "teller password 1"
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}
pytestmark = pytest.mark.browser

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect


def _browser_or_skip():
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return CHROMIUM
    message = f"Chromium not found at {CHROMIUM}: install it with `apt-get install chromium` to run browser tests"
    if os.environ.get("ATM_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser():
    executable = _browser_or_skip()
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with Server(tmp_path_factory.mktemp("browser") / "atm.db") as srv:
        srv.base = f"http://127.0.0.1:{srv.port}"
        yield srv


class Watched:
    """A page whose console errors (CSP violations among them), page errors and failed requests are kept."""

    def __init__(self, page):
        self.page, self.problems = page, []
        page.on("console", lambda msg: msg.type == "error" and self.problems.append(f"console: {msg.text}"))
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        # a load the page's own next navigation cancelled (a form sent by Enter before a script arrived) is
        # net::ERR_ABORTED: not a failure of the server; any other (refused, reset, a 4xx or 5xx below) is
        page.on("requestfailed", lambda request: "ERR_ABORTED" not in (request.failure or "")
                and self.problems.append(f"failed: {request.url} ({request.failure})"))
        page.on("response", lambda r: r.status >= 400 and r.request.resource_type != "document"
                and self.problems.append(f"{r.status}: {r.url}"))


@pytest.fixture
def watched(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    watched = Watched(context.new_page())
    yield watched
    context.close()
    assert watched.problems == [], watched.problems


@pytest.fixture(scope="module")
def admin(browser, server):
    """The first-run setup, in the browser, with the code the server printed: the admin's credentials."""
    context = browser.new_context()
    page = context.new_page()
    first_admin(page, server)
    open_drawer(page, server)  # her cash goes through it; an empty float needs nothing from the vault
    context.close()
    return "ada", PASSWORD


def first_admin(page, server):
    """Make the first administrator, ada, through /setup with the code the server printed (she is logged in)."""
    code = re.search(r"/setup\?code=([A-Za-z0-9_-]+)", server.output()).group(1)
    page.goto(f"{server.base}/setup?code={code}")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat password").fill(PASSWORD)
    page.get_by_role("button", name="Create administrator").click()
    expect(page.get_by_role("heading", name="Find an account")).to_be_visible()


def open_drawer(page, server, counts=None):
    """My drawer, the opening count by denomination label (counts: {'20.00': 10}), Open drawer."""
    page.get_by_role("link", name="My drawer").click()
    for denomination, count in (counts or {}).items():
        page.get_by_label(f"Count of {denomination}").fill(str(count))
    page.get_by_role("button", name="Open drawer").click()
    expect(page.get_by_role("status")).to_contain_text("Drawer open with a float of")


def log_in(page, server, credentials):
    page.goto(f"{server.base}/login")
    page.get_by_label("Username").fill(credentials[0])
    page.get_by_label("Password").fill(credentials[1])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Find an account")).to_be_visible()


def look_up(page, number):
    page.get_by_label("Account number").fill(number)
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_role("heading", name=number)).to_be_visible()


def fill_new_holder(page, name="Holly Holder", document="P1"):
    """On the confirm step of a new account: a new customer as its holder, by the fields' labels."""
    page.get_by_label("A new customer, recorded here:").check()
    page.get_by_label("Full name", exact=True).fill(name)
    page.get_by_label("Date of birth (YYYY-MM-DD)").fill("1980-02-29")
    page.get_by_label("Identity document", exact=True).select_option("passport")
    page.get_by_label("Document number", exact=True).fill(document)
    page.get_by_label("Issuing country (2 letters, e.g. US)").fill("US")
    page.get_by_label("Address", exact=True).fill("1 Main Street")
    page.get_by_label("Phone", exact=True).fill("+1 555 0100")


def balance(page) -> str:
    return page.locator(".balance").inner_text()


def journal_rows(server, number) -> int:
    status, body = server.request("GET", f"/accounts/{number}/transactions?limit=100")
    assert status == 200
    return len(body["transactions"])


def test_a_tellers_day(watched, server, admin):
    page = watched.page
    page.goto(f"{server.base}/setup")  # the first-run link is gone once an admin exists
    expect(page.get_by_role("heading", name="Not Found")).to_be_visible()
    watched.problems.clear()
    log_in(page, server, admin)
    look_up(page, "DAY1")
    expect(page.get_by_text("not open yet")).to_be_visible()

    page.get_by_label("Amount").fill("150.50")
    page.get_by_role("button", name="Deposit").click()
    expect(page.get_by_role("heading", name="Open a new account?")).to_be_visible()
    fill_new_holder(page, document="P1")
    page.get_by_role("button", name="Open account and deposit").click()
    expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
    receipt = page.locator(".receipt-lines")
    expect(receipt).to_contain_text("150.50")
    expect(receipt.locator(".total")).to_contain_text("150.50")

    page.get_by_role("link", name="Back to account").click()
    page.get_by_label("Amount").fill("2000")
    page.get_by_role("button", name="Withdraw").click()
    expect(page.get_by_role("alert")).to_contain_text("Insufficient funds")
    assert balance(page) == "150.50"
    watched.problems[:] = [p for p in watched.problems if "400" not in p]  # the refusal page itself is a 400

    page.get_by_role("link", name="Transfer…").click()
    expect(page.get_by_label("From account")).to_have_value("DAY1")
    page.get_by_label("To account").fill("DAY2")
    page.get_by_label("Amount").fill("50")
    page.get_by_role("button", name="Transfer").click()
    expect(page.get_by_role("heading", name="Open a new account?")).to_be_visible()  # DAY2 is new: its holder
    expect(page.get_by_text("from account DAY1 will open it")).to_be_visible()
    fill_new_holder(page, name="Tara Transferee", document="T2")
    page.get_by_role("button", name="Open account and transfer").click()
    expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
    expect(page.locator(".receipt-lines")).to_contain_text("100.50")
    expect(page.locator(".receipt-lines")).to_contain_text("New balance of DAY2")

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.goto(f"{server.base}/teller/accounts/DAY1")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


def test_double_click_on_deposit_moves_money_once(watched, server, admin):
    """A real double submit: the first post reaches the server before the second click.

    Left alone, Chromium cancels the first request when the second click submits again, so a test double
    click never sends two posts. Here each post goes through to the server at once (route.fetch) and only
    its answer is held back, as on a slow line; without the form's one-time key this makes two deposits.
    """
    page = watched.page
    log_in(page, server, admin)
    server.request("POST", "/accounts/DBL1/deposit", {"amount": 1})
    look_up(page, "DBL1")
    page.get_by_label("Amount").fill("25")
    held = []
    page.route("**/teller/transactions", lambda route: held.append((route, route.fetch())))
    page.get_by_role("button", name="Deposit").dblclick(delay=150)
    for _ in range(40):  # both posts have reached the server (bounded: 2 s)
        if len(held) == 2:
            break
        page.wait_for_timeout(50)
    assert len(held) == 2, "the double click did not post twice"
    for route, response in held:
        with contextlib.suppress(playwright_api.Error):  # the browser had already dropped the first navigation
            route.fulfill(response=response)
    page.unroute("**/teller/transactions")
    expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
    assert journal_rows(server, "DBL1") == 2
    assert server.request("GET", "/accounts/DBL1/balance")[1]["balance"] == 26
    watched.problems[:] = [p for p in watched.problems if "/teller/transactions" not in p]
    page.go_back()  # back to the form: a fresh page, showing the new balance and an empty amount
    expect(page.locator(".balance")).to_have_text("26.00")
    expect(page.get_by_label("Amount")).to_have_value("")


def test_five_wrong_passwords_show_the_lock_message(watched, server, admin):
    assert server.flask("create-teller", "lockme", input_text=PASSWORD + "\n").returncode == 0
    page = watched.page
    for attempt in range(5):
        page.goto(f"{server.base}/login")
        page.get_by_label("Username").fill("lockme")
        page.get_by_label("Password").fill(f"wrong password {attempt}")
        page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("locked for a while")
    watched.problems.clear()  # the refusals are 401/429 pages, by design


def test_opening_a_new_account_asks_for_confirmation(watched, server, admin):
    page = watched.page
    log_in(page, server, admin)
    look_up(page, "NEW7")
    page.get_by_label("Amount").fill("10")
    page.get_by_role("button", name="Deposit").click()
    expect(page.get_by_role("heading", name="Open a new account?")).to_be_visible()
    page.get_by_role("link", name="Cancel").click()
    assert server.request("GET", "/accounts/NEW7/transactions")[1]["transactions"] == []


def test_back_from_the_receipt_of_a_new_accounts_deposit_shows_a_page(watched, server, admin):
    """The confirmation is a page of its own (a GET): Back from the receipt lands on it, not on the browser's
    'Confirm form resubmission' error; submitting it again records nothing new."""
    page = watched.page
    log_in(page, server, admin)
    look_up(page, "NEW8")
    page.get_by_label("Amount").fill("10")
    page.get_by_role("button", name="Deposit").click()
    fill_new_holder(page, document="P2")
    page.get_by_role("button", name="Open account and deposit").click()
    expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
    page.go_back()
    expect(page.get_by_role("heading", name="Open a new account?")).to_be_visible()
    page.get_by_role("button", name="Open account and deposit").click()
    expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
    expect(page.get_by_text("already submitted")).to_be_visible()
    assert len(server.request("GET", "/accounts/NEW8/transactions")[1]["transactions"]) == 1


def test_keyboard_only_deposit_with_visible_focus(watched, server, admin):
    page = watched.page
    log_in(page, server, admin)
    server.request("POST", "/accounts/KEY1/deposit", {"amount": 5})
    page.goto(f"{server.base}/teller/accounts/KEY1")
    for _ in range(30):  # Tab until the amount field has focus (bounded)
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "amount":
            break
    else:
        pytest.fail("Tab never reached the Amount field")
    focus = page.evaluate("""() => { const e = document.activeElement, s = getComputedStyle(e);
        return {visible: e.matches(':focus-visible'), style: s.outlineStyle, width: parseFloat(s.outlineWidth)}; }""")
    assert focus["visible"] and focus["style"] != "none" and focus["width"] >= 2, focus
    page.keyboard.type("7.25")
    page.keyboard.press("Enter")  # the form's first button: Deposit
    expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
    assert server.request("GET", "/accounts/KEY1/balance")[1]["balance"] == 12.25


def _pages(page, server, admin):
    """(name, url) of the login, account, receipt, drawer, close, vault, report and admin pages, after making a
    receipt."""
    server.create_token("nightly-batch-reconciliation-job")  # a long name in the account's "By" column
    server.request("POST", "/accounts/SHOT1/deposit", {"amount": 1234.5})
    tx = server.request("POST", "/accounts/SHOT1/withdraw", {"amount": 34.5})[1]["transaction_id"]
    return [("login", f"{server.base}/login"), ("account", f"{server.base}/teller/accounts/SHOT1"),
            ("receipt", f"{server.base}/teller/receipts/{tx}"), ("drawer", f"{server.base}/teller/drawer/"),
            ("drawer-close", f"{server.base}/teller/drawer/close"), ("vault", f"{server.base}/admin/vault/"),
            ("end-of-day", f"{server.base}/admin/end-of-day/"), ("admin-tellers", f"{server.base}/admin/tellers"),
            ("admin-tokens", f"{server.base}/admin/tokens"), ("admin-audit", f"{server.base}/admin/audit")]


def serious_violations(axe, page) -> list[tuple[str, str, int]]:
    """axe's serious and critical violations on the page: (rule, impact, nodes)."""
    return [(v["id"], v["impact"], len(v["nodes"])) for v in axe.run(page).response["violations"]
            if v["impact"] in ("serious", "critical")]


def test_accessibility_no_serious_or_critical_violations(watched, server, admin):
    from axe_playwright_python.sync_playwright import Axe
    page, axe, found = watched.page, Axe(), {}
    pages = _pages(page, server, admin)
    page.goto(pages[0][1])
    for name, url in pages:
        if name == "account":
            log_in(page, server, admin)
        page.goto(url)
        bad = serious_violations(axe, page)
        if bad:
            found[name] = bad
    assert found == {}


# Labels of stacked table rows (phone width) narrower than their own text: broken over lines ("B", "y")
BROKEN_LABELS = """() => [...document.querySelectorAll('table.stack td[data-label]')].filter(td => {
    const s = getComputedStyle(td, '::before');
    if (s.content === 'none' || s.content === 'normal' || s.display === 'none') return false;
    const c = document.createElement('canvas').getContext('2d');
    c.font = `${s.fontStyle} ${s.fontWeight} ${s.fontSize} ${s.fontFamily}`;
    return parseFloat(s.width) + 0.5 < c.measureText(td.dataset.label).width; }).map(td => td.dataset.label)"""


def test_screens_hold_at_both_widths_and_the_receipt_prints_on_one_page(browser, server, admin):
    SHOTS.mkdir(exist_ok=True)
    for width, height in SIZES.values():
        context = browser.new_context(viewport={"width": width, "height": height})
        watched = Watched(context.new_page())
        page = watched.page
        pages = _pages(page, server, admin)
        for name, url in pages:
            if name == "account":
                log_in(page, server, admin)
            page.goto(url)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width}px"
            assert page.evaluate(BROKEN_LABELS) == [], (name, width)
            if name == "receipt":
                page.emulate_media(media="print")
                page.screenshot(path=str(SHOTS / f"{name}-print-{width}x{height}.png"), full_page=True)
                pdf = page.pdf(format="A4")
                assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1, "the receipt must print on one page"
                page.emulate_media(media="screen")
            page.screenshot(path=str(SHOTS / f"{name}-{width}x{height}.png"), full_page=True)
        context.close()
        assert watched.problems == [], watched.problems


def test_swagger_ui_authorises_with_a_token_and_makes_a_deposit(watched, server):
    """/docs is Swagger UI, served by the app (no CDN, no console error under its CSP): Authorize with a token,
    Try it out on the deposit, Execute; the ledger has the deposit."""
    page = watched.page
    token = server.create_token("swagger")
    page.goto(f"{server.base}/docs")
    page.locator(".auth-wrapper").get_by_role("button", name="Authorize").click()
    modal = page.locator(".modal-ux")
    modal.locator(".auth-container input").fill(token)
    modal.get_by_role("button", name="Apply credentials").click()
    expect(modal.get_by_role("button", name="Remove authorization")).to_be_visible()
    modal.get_by_role("button", name="Close").click()
    operation = page.locator(".opblock-post").filter(has=page.locator('[data-path="/accounts/{number}/deposit"]'))
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.locator('input[placeholder="number"]').fill("DOCS1")
    operation.locator("textarea.body-param__text").fill('{"amount": 12.5}')
    operation.get_by_role("button", name="Execute").click()
    expect(operation.locator(".live-responses-table tbody .response-col_status").first).to_have_text("200")
    expect(operation.locator(".live-responses-table .microlight").first).to_contain_text('"deposited_amount": 12.5')
    status, body = server.request("GET", "/accounts/DOCS1/balance")
    assert status == 200 and body["balance"] == 12.5
    status, body = server.request("GET", "/accounts/DOCS1/transactions")
    assert [row["actor"] for row in body["transactions"]] == ["token:swagger"]


def test_the_request_log_holds_no_name_token_or_query_string(server):
    """Last in this module (its tests ran on this server): one line per request, and in the whole log no customer's
    name, no token and no query string (issue 21)."""
    _browser_or_skip()  # what it reads is what the browser tests above had the server log
    log = server.log_path.read_text(errors="replace")
    lines = [line for line in log.splitlines() if " id=" in line]
    assert len(lines) > 100 and all("?" not in line for line in lines)
    for forbidden in ("Holly Holder", "Tara Transferee", server.token):
        assert forbidden not in log, forbidden
