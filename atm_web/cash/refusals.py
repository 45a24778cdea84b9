"""Refusals of cash at the branch: drawers, the vault, the day's close, and accounts opened at the counter."""
from atm_web.core.refusals import Refusal


class DrawerRefused(Refusal):
    """A drawer or vault step that cannot be done as asked (already open, not pending, the same person...)."""

    status = 409


class AccountOpenedMeanwhile(Refusal):
    """A teller confirmed opening a new account that another teller (or a script) opened meanwhile: their customer
    is not the holder on file, so nothing is posted."""

    status = 409

    def __init__(self, number: str, holders: list[str]):
        whom = f"for {', '.join(holders)}" if holders else "with no holder on file"
        super().__init__(f"account {number} was opened meanwhile by another teller {whom}: check the number")
        self.number = number


class CounterRefused(Refusal):
    """A posting at the counter that cannot be made as asked (a withdrawal for approval cannot open an account)."""

    status = 409


class AtmRefused(Refusal):
    """An ATM that cannot be registered, or a replenishment that cannot be entered or carried out, as asked."""


class AtmNotFound(Refusal):
    status = 404

    def __init__(self):
        super().__init__("No such ATM.")
