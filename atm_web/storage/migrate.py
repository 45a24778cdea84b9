"""The schema's migrations: one ordered list of plain SQL files per engine (storage/migrations/ENGINE/NNNN_name.sql,
beside this module), each applied once, in order, never edited once released."""
import re
from dataclasses import dataclass
from importlib import resources

FILE_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(engine: str) -> list[Migration]:
    """The engine's migrations in order; their numbers run 1, 2, 3... without a gap (checked)."""
    folder = resources.files("atm_web.storage") / "migrations" / engine
    found = sorted((int(match.group(1)), entry.name) for entry in folder.iterdir()
                   if (match := FILE_NAME.fullmatch(entry.name)))
    if [version for version, _ in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations/{engine}: numbers must run 0001, 0002, ... without gaps: {found}")
    return [Migration(version, name, (folder / name).read_text(encoding="utf-8")) for version, name in found]
