"""Text for a cell of a CSV file that no spreadsheet runs as a formula (OWASP: CSV injection)."""
import re

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_AFTER_A_SEPARATOR = re.compile(r"([,;\t][ ]*)([=+\-@])")


def spreadsheet_text(value: str) -> str:
    """Free text (a name, a note) as a cell no spreadsheet runs as a formula, whichever separator it splits on (',',
    ';' or a tab: quotes protect only a cell that starts with one): a formula's first character at the start of the
    text, or after a separator inside it, is made text with an apostrophe before it."""
    value = _AFTER_A_SEPARATOR.sub(r"\1'\2", value)
    return "'" + value if value[:1] in _FORMULA_START else value
