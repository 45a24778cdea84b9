"""A SQLite ledger's files as an operator handles them: a consistent copy taken while the app serves (VACUUM INTO
reads one snapshot; in WAL mode writers go on meanwhile), a copy opened to read only (to verify it), and a copy put
in the ledger's place, keeping the file it replaces. Whether a copy is sound is the ledger's to say
(serving/backups.py verifies it); this module only moves files.

Which processes hold a ledger: every SQLiteDatabase holds a shared lock on DB_PATH.inuse while it is open
(sqlite.py), so a restore takes that lock exclusively, or refuses.
"""
import asyncio
import contextlib
import fcntl
import os
import shutil
import sqlite3
from pathlib import Path

import aiosqlite

from atm_web.storage.migrate import migrations
from atm_web.storage.sqlite import SQLiteConnection, SQLiteDatabase


class SnapshotRefused(Exception):
    """A backup or restore that cannot be done as asked (the file exists, the ledger is in use...); nothing done."""


def _copy_now(source: str, target: str) -> None:
    """VACUUM INTO on a connection of its own: the source as one read transaction saw it, written compactly."""
    conn = sqlite3.connect(source, timeout=30)
    try:
        conn.execute("VACUUM INTO ?", (target,))
    finally:
        conn.close()


async def copy_of(source: str, target: str) -> int:
    """A consistent copy of the SQLite file `source` at `target` (which must not exist): its size in bytes. It is
    written beside the target under another name first and renamed once whole, so a target never holds half a
    copy."""
    if os.path.exists(target):
        raise SnapshotRefused(f"{target} exists already: a backup never overwrites a file")
    partial = f"{target}.partial"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(partial)
    try:
        await asyncio.to_thread(_copy_now, source, partial)
    except (sqlite3.Error, OSError) as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise SnapshotRefused(f"the copy failed: {error}") from None
    os.replace(partial, target)
    return os.path.getsize(target)


class ReadOnlyCopy(SQLiteDatabase):
    """A SQLite ledger file opened to read only (a backup to verify): no migration, no start-up step, no writer,
    nothing written to it. Reads go through Database.read as the app's do."""

    async def open(self) -> None:
        if self._reader is not None:
            return
        if not os.path.isfile(self.path):
            raise SnapshotRefused(f"{self.path}: no such file")
        raw = await aiosqlite.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None)
        self._reader, self._read_lock = SQLiteConnection(raw), asyncio.Lock()

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.raw.close()
            self._reader = None

    async def read(self, op, snapshot: bool = False, long: bool = False):
        """Every read on the one read-only connection (no one else reads a copy being verified)."""
        await self.open()
        async with self._read_lock:
            return await self._read_on(self._reader, op, snapshot)

    async def schema_version(self) -> int:
        (version,), = await self.read(lambda conn: conn.fetchall("PRAGMA user_version"))
        return version


def schema_is_known(version: int) -> bool:
    """Whether this code can run on a ledger of that schema version (it migrates an older one at start)."""
    return 0 < version <= len(migrations("sqlite"))


@contextlib.contextmanager
def held_alone(db_path: str):
    """The ledger at db_path, held by no other process while the block runs (SnapshotRefused otherwise)."""
    fd = os.open(f"{db_path}.inuse", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SnapshotRefused(f"{db_path} is in use (an app server holds it): stop every server first") from None
        yield
    finally:
        os.close(fd)  # releases the lock


def put_in_place(backup: str, db_path: str, stamp: str) -> str:
    """Put a copy of `backup` in the ledger's place (call it inside held_alone): the files it replaces (the ledger
    and its WAL) are kept beside it, renamed with the time `stamp`; that name is returned ('' when there was
    none)."""
    kept = ""
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db_path + suffix):
            os.replace(db_path + suffix, f"{db_path}.replaced-{stamp}{suffix}")
            kept = kept or f"{db_path}.replaced-{stamp}"
    partial = f"{db_path}.restoring"
    shutil.copyfile(backup, partial)
    os.replace(partial, db_path)
    return kept


def backups_in(folder: str, prefix: str) -> list[Path]:
    """The backups a schedule made in `folder`, oldest first (their names sort by their time)."""
    return sorted(Path(folder).glob(f"{prefix}*.db"))
