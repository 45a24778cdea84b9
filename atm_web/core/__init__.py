"""Below every domain: money, the clock, the bank's rules, the audit log and the one refusal base class."""
