"""The branch's settings the domain packages decide by (the approval limit, the large-cash threshold, the variance
tolerance...), read once from the configuration and carried by the database handle every domain call is given
(`db.settings`), as the clock is read once per request and passed down as `now`."""
from dataclasses import dataclass, field

DEFAULT_DENOMINATIONS = (10000, 5000, 2000, 1000, 500, 200, 100, 25, 10, 5, 1)


@dataclass(frozen=True)
class BranchSettings:
    approval_cash_limit_cents: int = 500_000  # APPROVAL_CASH_LIMIT: a teller's withdrawal above it waits
    ctr_threshold_cents: int = 1_000_000  # CTR_THRESHOLD: a customer's cash of a day above it needs the check
    variance_tolerance_cents: int = 500  # VARIANCE_TOLERANCE: a drawer's close beyond it waits for a sign-off
    max_amount_cents: int = 100_000_000  # MAX_AMOUNT: the largest single amount
    denominations: tuple[int, ...] = DEFAULT_DENOMINATIONS  # DENOMINATIONS, largest first
    hold_seconds: int = 600  # HOLD_SECONDS: a hold's life when its request names none
    hold_max_seconds: int = 7 * 24 * 3600  # HOLD_MAX_SECONDS: the longest a hold may be asked to last
    card_prefix: str = "999999"  # CARD_PREFIX: the first six digits of every card number the branch issues
    card_years: int = 4  # CARD_YEARS: how long a card is valid
    pin_key: bytes = field(default=b"", repr=False)  # PIN_KEY: the key of card numbers', codes' and PINs' hashes
    atm_daily_limit_cents: int = 100_000  # ATM_DAILY_LIMIT: a card's ATM cash out per day, pending included
    atm_fast_cash: tuple[int, ...] = (2000, 4000, 6000, 10000, 20000)  # ATM_FAST_CASH: the Fast cash amounts
    atm_max_notes: int = 40  # ATM_MAX_NOTES: the most notes one withdrawal pays
    atm_take_cash_seconds: int = 30  # ATM_TAKE_CASH_SECONDS: cash presented longer than this is retracted
    atm_idle_seconds: int = 30  # ATM_IDLE_SECONDS: a customer's session untouched this long ends
    atm_card_attempts_per_minute: int = 10  # ATM_CARD_ATTEMPTS_PER_MINUTE: card attempts an ATM takes in a minute

    @classmethod
    def from_config(cls, config) -> "BranchSettings":
        return cls(config["APPROVAL_CASH_LIMIT_CENTS"], config["CTR_THRESHOLD_CENTS"],
                   config["VARIANCE_TOLERANCE_CENTS"], config["MAX_AMOUNT_CENTS"], config["DENOMINATIONS"],
                   config["HOLD_SECONDS"], config["HOLD_MAX_SECONDS"], config["CARD_PREFIX"], config["CARD_YEARS"],
                   config["PIN_KEY"].encode(), config["ATM_DAILY_LIMIT_CENTS"], config["ATM_FAST_CASH"],
                   config["ATM_MAX_NOTES"], config["ATM_TAKE_CASH_SECONDS"], config["ATM_IDLE_SECONDS"],
                   config["ATM_CARD_ATTEMPTS_PER_MINUTE"])


def settings_of(db) -> BranchSettings:
    """The settings the app gave this database handle, or the defaults (a database opened outside the app)."""
    return db.settings or BranchSettings()
