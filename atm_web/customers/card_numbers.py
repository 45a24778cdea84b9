"""Card numbers: sixteen digits, the branch's six-digit prefix (CARD_PREFIX), nine random digits and a Luhn check
digit; stored only as a keyed digest (pins.number_digest) and shown by their last four digits."""
import secrets

LENGTH = 16
SHOWN = 4  # the digits a page, an audit row or a receipt may show


def luhn_check_digit(partial: str) -> str:
    """The digit that makes partial + it pass the Luhn check (ISO/IEC 7812)."""
    total = 0
    for position, character in enumerate(reversed(partial)):
        digit = int(character)
        if position % 2 == 0:  # every second digit from the right of the full number, the check digit not counted
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return str(-total % 10)


def is_luhn_valid(number: str) -> bool:
    return (isinstance(number, str) and len(number) >= 2 and number.isascii() and number.isdigit()
            and luhn_check_digit(number[:-1]) == number[-1])


def new_number(prefix: str) -> str:
    """A new random card number under the prefix (uniqueness is the caller's to check, by its digest)."""
    body = prefix + "".join(str(secrets.randbelow(10)) for _ in range(LENGTH - len(prefix) - 1))
    return body + luhn_check_digit(body)


def card_number(text) -> str | None:
    """The card number a reader or a keyboard typed (spaces and dashes between groups allowed), or None when it is
    not sixteen digits passing the Luhn check."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    digits = text.replace(" ", "").replace("-", "")
    return digits if len(digits) == LENGTH and is_luhn_valid(digits) else None


def masked(last4: str) -> str:
    """How a card is shown everywhere but the page that issues it: its last four digits."""
    return f"•••• {last4}"


def grouped(number: str) -> str:
    """The full number in groups of four, as printed on a card: shown once, when it is issued."""
    return " ".join(number[i:i + 4] for i in range(0, len(number), 4))
