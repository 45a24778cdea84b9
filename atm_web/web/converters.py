"""The one route converter for row ids: every id in every path is <id:name>, never werkzeug's <int:name>."""
from werkzeug.routing import IntegerConverter


class RowIdConverter(IntegerConverter):
    """<id:name>: a database row id, 1 to 2**63 - 1 in ASCII digits; anything else in the path is a 404, never an
    overflow (werkzeug's int converter matches \\d, which takes other scripts' digits too: '١' is 1)."""

    regex = r"[0-9]+"

    def __init__(self, url_map):
        super().__init__(url_map, min=1, max=2**63 - 1)
