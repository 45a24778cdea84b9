"""Refusals of four eyes: a request that cannot be decided as asked, or one's own."""
from atm_web.core.refusals import Refusal


class ApprovalRefused(Refusal):
    """An approval step that cannot be done as asked (decided already, expired, not the approver's to decide)."""

    status = 409


class SelfApproval(ApprovalRefused):
    status = 403

    def __init__(self):
        super().__init__("Nobody approves their own request: another supervisor must decide it.")
