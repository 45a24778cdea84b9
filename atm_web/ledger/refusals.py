"""The ledger's refusals: postings, accounts, reversals, idempotency keys, and the checks of what the ledger is
given (account numbers, reasons)."""
from atm_web.core.money import format_cents
from atm_web.core.refusals import Refusal, checked_note
from atm_web.core.rules import ACCOUNT_NUMBER_RULE, BALANCE_MAX_CENTS, REASON_MAX, is_account_number


class InsufficientFunds(Refusal):
    status = 400  # the original ATM API's answer
    for_teller = "Insufficient funds: this would go past the overdraft limit"

    def __init__(self, replayed: bool = False):
        super().__init__("Insufficient funds for withdrawal")
        self.replayed = replayed


class NotEnoughCash(Refusal):
    """A drawer (or the vault) would hold less than no notes: the database's CHECK cash_not_negative."""

    status = 409

    def __init__(self, where: str = "your drawer"):
        super().__init__(f"Not enough cash in {where}")


class DrawerNotOpen(Refusal):
    """Cash at the teller's counter needs their drawer open (and not waiting for a sign-off)."""

    status = 409

    def __init__(self, message: str = "Your drawer is not open: open it before posting cash."):
        super().__init__(message)


class BalanceTooLarge(Refusal):
    def __init__(self):
        super().__init__(f"this would take the account past the largest balance the ledger holds "
                         f"({format_cents(BALANCE_MAX_CENTS)})")


class SameAccount(Refusal):
    def __init__(self):
        super().__init__("a transfer needs two different accounts")


class UnknownAccount(Refusal):
    """An account named in the body (a transfer's source) that does not exist."""

    def __init__(self, number: str):
        super().__init__(f"account {number} does not exist")


class AccountNotFound(UnknownAccount):
    """The account a request is about (its path names it) does not exist."""

    status = 404


class CashAtTheCounter(Refusal):
    """A reversal of a transaction that moved cash, asked where no drawer can pay it (the API)."""

    status = 409

    def __init__(self, tx_id: int):
        super().__init__(f"journal entry {tx_id} moved cash through a drawer: its reversal is asked on its receipt "
                         "at the teller screen, and pays the cash through the drawer of the teller who asks")


class AccountNotOpen(Refusal):
    """A posting asked not to open a new account (a teller who has not confirmed that yet)."""

    status = 409

    def __init__(self, number: str):
        super().__init__(f"account {number} does not exist yet")
        self.number = number


class CannotReverse(Refusal):
    """A reversal itself, already reversed with another reason, or no reason given."""


class UnknownEntry(CannotReverse):
    status = 404

    def __init__(self, tx_id: int):
        super().__init__(f"there is no journal entry {tx_id}")


class LimitBelowDebt(Refusal):
    def __init__(self, owed_cents: int):
        super().__init__(f"the account owes {format_cents(owed_cents)}, more than that limit")


class IdempotencyKeyReused(Refusal):
    for_teller = "This form was already used. Nothing new was recorded; start again from the account"

    def __init__(self, transaction_id: int | None = None):
        super().__init__("this idempotency key was already used for a different request")
        self.transaction_id = transaction_id


class HoldNotFound(Refusal):
    status = 404

    def __init__(self, hold_id: int):
        super().__init__(f"there is no hold {hold_id}")


class HoldEnded(Refusal):
    """A capture or void of a hold that ended already (captured, voided, expired): its status says how."""

    status = 409

    def __init__(self, hold_id: int, status: str):
        super().__init__(f"hold {hold_id} is {status}: it can no longer be captured or voided")
        self.json_fields = {"hold_id": hold_id, "status": status}


class CaptureAboveHold(Refusal):
    def __init__(self, held_cents: int):
        super().__init__(f"a capture takes at most the hold's amount ({format_cents(held_cents)})")


class InvalidAccountNumber(Refusal):
    def __init__(self, field: str = "account number"):
        super().__init__(f"{field} must be {ACCOUNT_NUMBER_RULE}")


class InvalidCursor(Refusal):
    def __init__(self):
        super().__init__("cursor must be a value returned as next_cursor")


def check_account_number(number, field: str = "account number") -> str:
    if not is_account_number(number):
        raise InvalidAccountNumber(field)
    return number


def check_reason(reason) -> str:
    return checked_note(reason, CannotReverse, "a reversal needs a reason")


class InvalidHold(Refusal):
    """A hold asked with a memo or an expiry the ledger does not take."""


def check_hold_memo(memo) -> str:
    """A hold's memo: text of at most REASON_MAX characters, stripped (may be empty)."""
    if not isinstance(memo, str) or len(memo.strip()) > REASON_MAX:
        raise InvalidHold(f"memo must be text of at most {REASON_MAX} characters")
    return memo.strip()
