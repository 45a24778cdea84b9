"""Staff refusals: tellers, logins and tokens, and a decision whose maker lost the right to make it."""
from atm_web.core.refusals import Refusal


class StaffRefused(Refusal):
    """A refusal about tellers, logins or tokens, with a message fit to show an administrator."""


class LoginLocked(StaffRefused):
    """Logging in is refused without a password check: the username or the address is locked or at its limit."""

    status = 429

    def __init__(self, kind: str):
        super().__init__(f"logins for this {kind} are locked for a while")
        self.kind = kind



class NoLongerAuthorised(Refusal):
    """A decision whose maker lost the role it needs, or their session, after their request began."""

    status = 403

    def __init__(self):
        super().__init__("You no longer hold the role this needs, or your session has ended: nothing was done")
