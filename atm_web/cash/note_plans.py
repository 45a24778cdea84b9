"""Which notes an ATM pays an amount with: the fewest notes, never more of a cassette than it holds free (its notes
less those reserved for withdrawals under way), at most ATM_MAX_NOTES in all; and, for an amount it cannot pay, the
nearest amounts it can (the customer is told them before anything is held).

Exact, in integer cents: a bounded change-making problem solved by dynamic programming over the amount in units of
the denominations' greatest common divisor (a few thousand units for any ATM amount), never by greedy choice (20.00
and 50.00 notes pay 60.00 as three 20s, which greedy misses).
"""
from dataclasses import dataclass
from math import gcd


@dataclass(frozen=True)
class Free:
    """A cassette's notes that can be paid now."""
    position: int
    denomination_cents: int
    notes: int


def _unit(cassettes: list[Free]) -> int:
    unit = 0
    for c in cassettes:
        unit = gcd(unit, c.denomination_cents)
    return unit


def _table(cassettes: list[Free], unit: int, top: int, max_notes: int):
    """fewest[v]: the fewest notes making v units (max_notes + 1: cannot), for v up to top; and per cassette (the
    larger notes last), how many of its notes that uses."""
    infinity = max_notes + 1
    fewest = [0] + [infinity] * top
    choices = []
    for c in cassettes:
        size = c.denomination_cents // unit
        most = min(c.notes, max_notes)
        best, chosen = fewest[:], [0] * (top + 1)
        for value in range(size, top + 1):
            for count in range(1, min(most, value // size) + 1):
                notes = fewest[value - count * size] + count
                if notes <= best[value]:  # <=: more of the larger notes in a tie
                    best[value], chosen[value] = notes, count
        fewest = best
        choices.append(chosen)
    return fewest, choices


def _usable(cassettes: list[Free]) -> list[Free]:
    return sorted((c for c in cassettes if c.notes > 0 and c.denomination_cents > 0),
                  key=lambda c: c.denomination_cents)


def plan(cassettes: list[Free], amount_cents: int, max_notes: int) -> dict[int, int] | None:
    """{position: notes} paying exactly amount_cents with the fewest notes (ties: the larger notes first), or None
    when the cassettes cannot."""
    usable = _usable(cassettes)
    if amount_cents <= 0 or not usable:
        return None
    unit = _unit(usable)
    if amount_cents % unit or amount_cents > max_notes * usable[-1].denomination_cents:
        return None
    target = amount_cents // unit
    fewest, choices = _table(usable, unit, target, max_notes)
    if fewest[target] > max_notes:
        return None
    paid, value = {}, target
    for c, chosen in zip(reversed(usable), reversed(choices), strict=True):
        if chosen[value]:
            paid[c.position] = chosen[value]
            value -= chosen[value] * c.denomination_cents // unit
    return dict(sorted(paid.items()))


def payable(cassettes: list[Free], amounts, max_notes: int) -> list[int]:
    """The amounts (cents) of `amounts` the cassettes can pay, in their order."""
    return [amount for amount in amounts if plan(cassettes, amount, max_notes) is not None]


def nearest(cassettes: list[Free], amount_cents: int, max_notes: int, most_cents: int | None = None) -> list[int]:
    """The payable amounts nearest amount_cents, the one below it and the one above it (up to most_cents), for a
    refusal: one table of every amount the cassettes can make."""
    usable = _usable(cassettes)
    if not usable:
        return []
    unit = _unit(usable)
    ceiling = max_notes * usable[-1].denomination_cents
    if most_cents is not None:
        ceiling = min(ceiling, most_cents)
    top = ceiling // unit
    fewest, _ = _table(usable, unit, top, max_notes)
    made = [v * unit for v in range(1, top + 1) if fewest[v] <= max_notes]
    below = [v for v in made if v < amount_cents]
    above = [v for v in made if v > amount_cents]
    return ([below[-1]] if below else []) + ([above[0]] if above else [])
