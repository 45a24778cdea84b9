"""Refusals about customers, holders and large cash."""
from atm_web.core.refusals import Refusal


class CustomerRefused(Refusal):
    """A customer record or a holder that cannot be written as asked (a document already on file, say)."""


class NeedsHolder(Refusal):
    """Large cash on an account with no holder on file: the holder must be recorded first."""

    status = 409

    def __init__(self, number: str):
        super().__init__(f"This cash would take account {number} above the large-cash threshold today, and it has "
                         "no holder on file: add the holder first. Nothing was recorded.")
        self.number = number


class NeedsIdentityCheck(Refusal):
    """Large cash: the teller must record the identity document of the person present as checked."""

    status = 409

    def __init__(self, customers):
        names = ", ".join(customer.full_name for customer in customers)
        super().__init__(f"Large cash: this takes the day's cash of {names} above the threshold. Check the identity "
                         "document of the person present and record it below. Nothing was recorded yet.")
        self.customers = customers


class ReportNotOpen(Refusal):
    """A large-cash report entry to mark filed that is not open (filed already, or unknown)."""

    status = 409

    def __init__(self):
        super().__init__("That report is not open (filed already, or unknown).")


class CardRefused(Refusal):
    """A card that cannot be issued, reported or unblocked as asked."""

    status = 409


class CardNotFound(Refusal):
    status = 404

    def __init__(self):
        super().__init__("No such card.")
