"""Template helpers: money, times in the branch's zone, transaction kinds, who did something, and the rules."""
from atm_web.core import clock, rules
from atm_web.core.money import format_cents


def actor_name(actor: str) -> str:
    """Who did something, as a page shows it: a teller by name, a token by its name (the JSON keeps the actor)."""
    kind, _, name = actor.partition(":")
    if kind == "teller" and name:
        return name
    if kind == "token" and name:
        return f"{name} (API token)"
    return actor


def register(app) -> None:
    zone = app.config["BRANCH_TIMEZONE"]
    app.add_template_filter(format_cents, "money")
    app.add_template_filter(lambda moment: clock.local(moment, zone), "when")
    app.add_template_filter(lambda moment: clock.local(moment, zone)[11:], "time_of_day")
    app.add_template_filter(lambda kind: rules.KIND_LABELS.get(kind, kind), "kind_label")
    app.add_template_filter(actor_name, "actor")
    app.add_template_global(rules, "rules")  # the templates state the rules from the one place they live
