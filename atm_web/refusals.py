"""The ledger's refusals: each carries a message fit to show a teller or a script, and the HTTP status it means.

errors.py turns any of them into the answer (JSON for scripts, the form's page or an error page for tellers);
views do not catch them one by one. Raw database errors never leave the ledger: they become these, or
storage.LedgerUnavailable.
"""
from .money import format_cents
from .rules import ACCOUNT_NUMBER_RULE, BALANCE_MAX_CENTS, REASON_MAX, is_account_number


class LedgerError(Exception):
    """Base of the ledger's refusals."""

    status = 422  # the request cannot be done as asked
    replayed = False  # the stored outcome of an earlier request with the same idempotency key


class InsufficientFunds(LedgerError):
    status = 400  # the original ATM API's answer

    def __init__(self, replayed: bool = False):
        super().__init__("Insufficient funds for withdrawal")
        self.replayed = replayed


class NotEnoughCash(LedgerError):
    """A drawer (or the vault) would hold less than no notes: the database's CHECK cash_not_negative."""

    status = 409

    def __init__(self, where: str = "your drawer"):
        super().__init__(f"Not enough cash in {where}")


class DrawerNotOpen(LedgerError):
    """Cash at the teller's counter needs their drawer open (and not waiting for a sign-off)."""

    status = 409

    def __init__(self, message: str = "Your drawer is not open: open it before posting cash."):
        super().__init__(message)


class DrawerRefused(LedgerError):
    """A drawer or vault step that cannot be done as asked (already open, not pending, the same person...)."""

    status = 409


class InvalidDate(LedgerError):
    def __init__(self):
        super().__init__("date must be a calendar date written YYYY-MM-DD")


class BalanceTooLarge(LedgerError):
    def __init__(self):
        super().__init__(f"this would take the account past the largest balance the ledger holds "
                         f"({format_cents(BALANCE_MAX_CENTS)})")


class SameAccount(LedgerError):
    def __init__(self):
        super().__init__("a transfer needs two different accounts")


class UnknownAccount(LedgerError):
    """An account named in the body (a transfer's source) that does not exist."""

    def __init__(self, number: str):
        super().__init__(f"account {number} does not exist")


class AccountNotFound(UnknownAccount):
    """The account a request is about (its path names it) does not exist."""

    status = 404


class AccountOpenedMeanwhile(LedgerError):
    """A teller confirmed opening a new account that another teller (or a script) opened meanwhile: their customer
    is not the holder on file, so nothing is posted."""

    status = 409

    def __init__(self, number: str, holders: list[str]):
        whom = f"for {', '.join(holders)}" if holders else "with no holder on file"
        super().__init__(f"account {number} was opened meanwhile by another teller {whom}: check the number")
        self.number = number


class CashAtTheCounter(LedgerError):
    """A reversal of a transaction that moved cash, asked where no drawer can pay it (the API)."""

    status = 409

    def __init__(self, tx_id: int):
        super().__init__(f"journal entry {tx_id} moved cash through a drawer: its reversal is asked on its receipt "
                         "at the teller screen, and pays the cash through the drawer of the teller who asks")


class NoLongerAuthorised(LedgerError):
    """A decision whose maker lost the role it needs, or their session, after their request began."""

    status = 403

    def __init__(self):
        super().__init__("You no longer hold the role this needs, or your session has ended: nothing was done")


class ControlCharacters(LedgerError):
    """Text that came in with a control character (NUL and the like): refused wherever it enters."""

    def __init__(self, where: str):
        super().__init__(f"{where} holds a control character (such as NUL), which no field accepts")


class AccountNotOpen(LedgerError):
    """A posting asked not to open a new account (a teller who has not confirmed that yet)."""

    status = 409

    def __init__(self, number: str):
        super().__init__(f"account {number} does not exist yet")
        self.number = number


class CannotReverse(LedgerError):
    """A reversal itself, already reversed with another reason, or no reason given."""


class UnknownEntry(CannotReverse):
    status = 404

    def __init__(self, tx_id: int):
        super().__init__(f"there is no journal entry {tx_id}")


class LimitBelowDebt(LedgerError):
    def __init__(self, owed_cents: int):
        super().__init__(f"the account owes {format_cents(owed_cents)}, more than that limit")


class IdempotencyKeyReused(LedgerError):
    def __init__(self, transaction_id: int | None = None):
        super().__init__("this idempotency key was already used for a different request")
        self.transaction_id = transaction_id


class InvalidAccountNumber(LedgerError):
    def __init__(self, field: str = "account number"):
        super().__init__(f"{field} must be {ACCOUNT_NUMBER_RULE}")


class InvalidCursor(LedgerError):
    def __init__(self):
        super().__init__("cursor must be a value returned as next_cursor")


def check_account_number(number, field: str = "account number") -> str:
    if not is_account_number(number):
        raise InvalidAccountNumber(field)
    return number


def check_amount(amount_cents) -> None:
    """A programming error, not a refusal: amounts are parsed (money.to_cents) before they reach the ledger."""
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool) or amount_cents <= 0:
        raise ValueError("amount_cents must be a positive int")


def checked_note(text, refusal: type[LedgerError], needs: str) -> str:
    """A reason or note staff write (a reversal's, a sign-off's, a decision's): stripped, 1 to REASON_MAX characters,
    else refusal("<needs> of 1 to REASON_MAX characters")."""
    text = text.strip() if isinstance(text, str) else ""
    if not 1 <= len(text) <= REASON_MAX:
        raise refusal(f"{needs} of 1 to {REASON_MAX} characters")
    return text


def check_reason(reason) -> str:
    return checked_note(reason, CannotReverse, "a reversal needs a reason")


class CustomerRefused(LedgerError):
    """A customer record or a holder that cannot be written as asked (a document already on file, say)."""


class NeedsHolder(LedgerError):
    """Large cash on an account with no holder on file: the holder must be recorded first."""

    status = 409

    def __init__(self, number: str):
        super().__init__(f"This cash would take account {number} above the large-cash threshold today, and it has "
                         "no holder on file: add the holder first. Nothing was recorded.")
        self.number = number


class NeedsIdentityCheck(LedgerError):
    """Large cash: the teller must record the identity document of the person present as checked."""

    status = 409

    def __init__(self, customers):
        names = ", ".join(customer.full_name for customer in customers)
        super().__init__(f"Large cash: this takes the day's cash of {names} above the threshold. Check the identity "
                         "document of the person present and record it below. Nothing was recorded yet.")
        self.customers = customers


class ApprovalRefused(LedgerError):
    """An approval step that cannot be done as asked (decided already, expired, not the approver's to decide)."""

    status = 409


class SelfApproval(ApprovalRefused):
    status = 403

    def __init__(self):
        super().__init__("Nobody approves their own request: another supervisor must decide it.")
