"""ATMs in real Chromium, by labels and roles: an administrator registers an ATM on Admin > ATMs and enters its
replenishment's blind count and load; a supervisor confirms it in a second browser; the ATM's page then shows its
expected cash, notes and journal. axe finds no serious or critical violation on the ATM pages, which hold at both
widths."""
import re

import pytest

from .test_browser import (  # noqa: F401 (browser: the module's fixture)
    PASSWORD,
    SIZES,
    Watched,
    browser,
    expect,
    log_in,
    serious_violations,
)
from .test_browser_approvals import branch  # noqa: F401 (the fixture)

pytestmark = pytest.mark.browser


def test_an_atm_registered_and_replenished_with_a_second_persons_confirmation(browser, branch):  # noqa: F811
    from axe_playwright_python.sync_playwright import Axe
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    watched = Watched(context.new_page())
    page, axe, found, pages = watched.page, Axe(), {}, {}

    def check(name):
        pages[name] = page.url
        if bad := serious_violations(axe, page):
            found[name] = bad

    log_in(page, branch, ("ada", PASSWORD))
    page.goto(f"{branch.base}/admin/vault/")
    page.get_by_role("link", name="ATMs").click()
    expect(page.get_by_role("heading", name="ATMs", exact=True)).to_be_visible()
    check("atms")
    page.get_by_label("Name", exact=True).fill("Lobby")
    page.get_by_label("Location").fill("Main Street, by the door")
    page.get_by_label("Cassette 1").select_option(label="50.00")
    page.get_by_label("Cassette 2").select_option(label="20.00")
    page.get_by_role("button", name="Register ATM").click()
    expect(page.get_by_role("heading", name="ATM 1 (Lobby)")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("ATM 1 (Lobby) registered")
    check("atm")
    page.get_by_role("link", name="Replenish").click()
    expect(page.get_by_role("heading", name="Replenish ATM 1 (Lobby)")).to_be_visible()
    check("replenish")
    assert "Expected" not in page.content()  # a blind count
    page.get_by_label("Notes left in cassette 1 (50.00)").fill("0")
    page.get_by_label("Notes loaded into cassette 1 (50.00)").fill("100")
    page.get_by_label("Notes loaded into cassette 2 (20.00)").fill("50")
    page.get_by_role("button", name="Enter the count").click()
    expect(page.get_by_role("status").first).to_contain_text("Count entered")
    reference = re.search(r"R-\d+", page.get_by_role("status").first.inner_text()).group(0)

    other = browser.new_context(viewport={"width": 1280, "height": 800})
    sam = Watched(other.new_page())
    log_in(sam.page, branch, ("sam", PASSWORD))
    sam.page.get_by_role("link", name="Approvals (1 waiting)").click()
    expect(sam.page.get_by_text("Confirm the replenishment of ATM 1 (Lobby): counted 0.00, loading 6,000.00")
           ).to_be_visible()
    sam.page.get_by_label(f"Note for {reference}").fill("counted with ada")
    sam.page.get_by_role("button", name=f"Approve {reference}").click()
    expect(sam.page.get_by_role("status")).to_contain_text(f"Request {reference} approved")
    other.close()
    assert sam.problems == [], sam.problems

    page.goto(pages["atm"])
    expect(page.locator(".balance")).to_have_text("6,000.00")
    expect(page.get_by_role("cell", name="replenished")).to_be_visible()
    expect(page.locator(".receipt-lines")).to_contain_text(re.compile(r"Confirmed.* by sam"))
    check("atm-replenished")
    context.close()
    assert found == {} and watched.problems == [], (found, watched.problems)

    for width, height in SIZES.values():
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        log_in(page, branch, ("ada", PASSWORD))
        for name in ("atms", "atm-replenished", "replenish"):
            page.goto(pages[name])
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width}px"
        context.close()
