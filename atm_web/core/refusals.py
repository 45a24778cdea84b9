"""The one refusal base class, and the refusals and checks every layer shares.

A refusal carries a message fit to show a teller or a script, and the HTTP status it means. Each domain package
keeps its own refusals (their modules: ledger/refusals.py, staff/refusals.py...), all subclasses of Refusal;
web/errors.py turns any of them into the answer (JSON for scripts, the form's page or an error page for tellers);
views do not catch them one by one. Raw database errors never leave the ledger: they become refusals, or
storage.LedgerUnavailable.
"""
from atm_web.core.rules import REASON_MAX


class Refusal(Exception):
    """The one base of every refusal: its message and its status."""

    status = 422  # the request cannot be done as asked
    replayed = False  # the stored outcome of an earlier request with the same idempotency key

    @property
    def for_teller(self) -> str:
        """The refusal in a teller's words (web/errors.py adds that nothing was recorded): its message, unless a
        refusal words it otherwise for a teller than for a script."""
        return str(self)


class InvalidDate(Refusal):
    def __init__(self):
        super().__init__("date must be a calendar date written YYYY-MM-DD")


class ControlCharacters(Refusal):
    """Text that came in with a control character (NUL and the like): refused wherever it enters."""

    def __init__(self, where: str):
        super().__init__(f"{where} holds a control character (such as NUL), which no field accepts")


def check_amount(amount_cents) -> None:
    """A programming error, not a refusal: amounts are parsed (money.to_cents) before they reach the ledger."""
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool) or amount_cents <= 0:
        raise ValueError("amount_cents must be a positive int")


def checked_note(text, refusal: type[Refusal], needs: str) -> str:
    """A reason or note staff write (a reversal's, a sign-off's, a decision's): stripped, 1 to REASON_MAX characters,
    else refusal("<needs> of 1 to REASON_MAX characters")."""
    text = text.strip() if isinstance(text, str) else ""
    if not 1 <= len(text) <= REASON_MAX:
        raise refusal(f"{needs} of 1 to {REASON_MAX} characters")
    return text
