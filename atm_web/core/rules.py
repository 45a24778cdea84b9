"""The bank's rules that several modules check or show, each written once: account numbers, maxima, staff names
and passwords, reasons, transaction kinds and their labels, and what a busy ledger tells its callers.

Forms, the JSON API, the OpenAPI document and the templates import these; nothing restates them.
"""
import re

ACCOUNT_NUMBER_PATTERN = "[A-Za-z0-9]{1,34}"  # IBAN length, ASCII letters and digits
ACCOUNT_NUMBER = re.compile(ACCOUNT_NUMBER_PATTERN)
ACCOUNT_NUMBER_RULE = "1 to 34 letters and digits"

# Bounds that keep every sum far inside 64-bit integers and every balance exactly writable as a JSON number (15
# significant digits survive the float round trip): config.py refuses a MAX_AMOUNT or MAX_DEBT past them at start,
# and the database refuses a balance past BALANCE_MAX_CENTS before anything is committed.
BALANCE_MAX_CENTS = 10**15 - 1  # 9,999,999,999,999.99
AMOUNT_MAX_CENTS = 10**11       # the largest MAX_AMOUNT: 1,000,000,000.00
LIMIT_MAX_CENTS = 10**10        # the largest overdraft limit, MAX_DEBT included: 100,000,000.00

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,31}")
USERNAME_RULE = "2 to 32 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
PASSWORD_MIN, PASSWORD_MAX = 12, 128
ROLES = ("teller", "supervisor", "admin")  # a supervisor also approves; an administrator also manages the branch
TOKEN_NAME_MAX = 64
REASON_MAX = 200  # a reversal's reason, in characters
HISTORY_MAX = 100  # journal rows in one page

KIND_LABELS = {"deposit": "Deposit", "withdrawal": "Withdrawal", "transfer_out": "Transfer out",
               "transfer_in": "Transfer in", "reversal_credit": "Reversal (credit)",
               "reversal_debit": "Reversal (debit)"}
KINDS = tuple(KIND_LABELS)  # a customer's rows
BANK_KINDS = ("debit", "credit")  # the bank's side of a transaction, on its own accounts
CREDIT_KINDS = frozenset({"deposit", "transfer_in", "reversal_credit", "credit"})
REVERSING_KIND = {"deposit": "reversal_debit", "transfer_in": "reversal_debit",
                  "withdrawal": "reversal_credit", "transfer_out": "reversal_credit", "debit": "credit",
                  "credit": "debit"}

# The bank's own accounts: numbered outside ACCOUNT_NUMBER, so no customer's number can be one, and every
# customer endpoint refuses them as it refuses any malformed number. One sign convention for every account,
# credit positive: cash (the vault, each drawer) stands at minus the notes it holds.
BANK_PREFIX = "@"  # every account of the bank's own starts with it
VAULT, CLEARING, CASH_OVER, CASH_SHORT = "@vault", "@clearing", "@cash-over", "@cash-short"
DRAWER_PREFIX = "@drawer-"  # and the drawer session's id: each session has a cash account of its own
ATM_PREFIX = "@atm-"  # and the ATM's id: each ATM has a cash account of its own
CASH_KINDS = ("vault", "drawer")
BANK_LIMIT_CENTS = 10**18  # the bank's accounts' overdraft limit: none to speak of, inside 64 bits

LEDGER_BUSY = "The ledger is busy; nothing was written, try again"
LEDGER_UNCONFIRMED = "The ledger did not confirm the write: it may have been recorded"


def is_account_number(value) -> bool:
    return isinstance(value, str) and ACCOUNT_NUMBER.fullmatch(value) is not None
