"""Cards in real Chromium, by labels and roles: a teller issues a card to a customer from the customer's page and
sees its number and PIN-setting code once; the customer's page shows it by its last 4 digits only. axe finds no
serious or critical violation on the card pages, and they hold at both widths."""
import re

import pytest

from .test_browser import (  # noqa: F401 (browser: the module's fixture)
    PASSWORD,
    SIZES,
    Watched,
    browser,
    expect,
    fill_new_holder,
    log_in,
    open_drawer,
    serious_violations,
)
from .test_browser_approvals import branch  # noqa: F401 (the fixture)

pytestmark = pytest.mark.browser


def test_a_teller_issues_a_card_and_sees_its_number_once(browser, branch):  # noqa: F811
    from axe_playwright_python.sync_playwright import Axe
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    watched = Watched(context.new_page())
    page, axe, found, pages = watched.page, Axe(), {}, {}

    def check(name):
        pages[name] = page.url
        if bad := serious_violations(axe, page):
            found[name] = bad

    log_in(page, branch, ("tina", PASSWORD))
    open_drawer(page, branch)
    for number in ("CARD1", "CARD2"):
        page.get_by_role("link", name="Find account").click()
        page.get_by_label("Account number or holder's name").fill(number)
        page.get_by_role("button", name="Look up").click()
        page.get_by_label("Amount").fill("25")
        page.get_by_role("button", name="Deposit").click()
        if number == "CARD1":
            fill_new_holder(page, "Grace Hopper", "GH1906")
        else:
            page.get_by_label(re.compile("Find an existing customer")).fill("hopper")
            page.get_by_role("button", name="Search customers").click()
            page.get_by_label(re.compile("Grace Hopper, born")).check()
        page.get_by_role("button", name="Open account and deposit").click()
        expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
    page.goto(f"{branch.base}/teller/accounts/CARD1")
    page.get_by_role("link", name="Grace Hopper").first.click()
    expect(page.get_by_role("heading", name="Grace Hopper")).to_be_visible()
    expect(page.get_by_text("No card.")).to_be_visible()
    page.get_by_role("link", name="Issue a card").click()
    expect(page.get_by_role("heading", name="Issue a card to Grace Hopper")).to_be_visible()
    check("issue-card")
    page.get_by_role("button", name="Issue the card").click()  # nothing chosen: told what is missing
    expect(page.get_by_role("alert").first).to_contain_text("Choose at least one account.")
    page.get_by_role("group", name="Accounts the card reaches").get_by_label("CARD1").check()
    page.get_by_role("group", name="Accounts the card reaches").get_by_label("CARD2").check()
    page.get_by_role("group", name=re.compile("Default account")).get_by_label("CARD2").check()
    page.get_by_role("button", name="Issue the card").click()
    heading = page.get_by_role("heading", name=re.compile(r"Card •••• \d{4} issued to Grace Hopper"))
    expect(heading).to_be_visible()
    check("card-issued")
    number = page.locator(".card-number").first.inner_text()
    assert re.fullmatch(r"9999 99\d\d \d{4} \d{4}", number.strip()), number
    last4 = number.strip()[-4:]
    expect(page.locator(".receipt-lines")).to_contain_text("CARD2 (default)")
    page.get_by_role("link", name="Done").click()
    expect(page.get_by_role("heading", name="Grace Hopper")).to_be_visible()
    expect(page.get_by_role("cell", name=f"•••• {last4}", exact=True)).to_be_visible()
    assert number.replace(" ", "") not in page.content() and number not in page.content()
    log = branch.log_path.read_text(errors="replace")  # the server's whole log
    assert number.replace(" ", "") not in log and number.replace(" ", "")[-9:] not in log
    check("customer-with-card")
    context.close()
    refused_on_purpose = "the server responded with a status of 422"  # the empty form above
    assert found == {} and [p for p in watched.problems if refused_on_purpose not in p] == [], watched.problems

    for width, height in SIZES.values():  # the card pages hold at both widths
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        log_in(page, branch, ("tina", PASSWORD))
        for name in ("issue-card", "customer-with-card"):
            page.goto(pages[name])
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width}px"
        context.close()
