"""Backups of a SQLite ledger, each verified before it counts: `flask backup` and `flask restore`, and the snapshots
a server takes on a schedule (BACKUP_DIR, BACKUP_EVERY_MINUTES, BACKUP_KEEP).

A backup is a copy taken while the app serves (storage/snapshots.py: one point in time, writers going on), then
the ledger's `verify` run on the copy, opened read-only: only a copy that verifies is kept. A restore verifies the
backup first, refuses while any process holds the ledger, and keeps the file it replaces. On PostgreSQL the
platforms' backups and pg_dump do this (README, Backups).
"""
import asyncio
import contextlib
import fcntl
import logging
import os
from dataclasses import dataclass

from atm_web.core.clock import file_stamp
from atm_web.ledger import verification
from atm_web.storage import Database
from atm_web.storage.snapshots import (
    ReadOnlyCopy,
    SnapshotRefused,
    backups_in,
    copy_of,
    held_alone,
    put_in_place,
    schema_is_known,
)

log = logging.getLogger(__name__)
SCHEDULED_PREFIX = "atm-"  # a scheduled backup: atm-20261204T101500Z.db


class BackupFailed(Exception):
    """A backup or a restore that did not happen, with why; a backup that does not verify is not kept."""


@dataclass(frozen=True)
class Verified:
    path: str
    rows_checked: int
    size_bytes: int


async def verify_copy(path: str) -> int:
    """The rows a backup's verify checked; BackupFailed naming the first problem, or a schema this code does not
    know."""
    copy = ReadOnlyCopy(path, 0)
    try:
        try:
            version = await copy.schema_version()
        except SnapshotRefused as error:
            raise BackupFailed(str(error)) from None
        except Exception as error:  # not a SQLite file, a torn one...
            raise BackupFailed(f"{path} is not a readable ledger ({type(error).__name__}: {error})") from None
        if not schema_is_known(version):
            raise BackupFailed(f"{path} has schema version {version}, which this release does not know")
        try:
            problems, rows_checked = await verification.verify(copy)
        except Exception as error:
            raise BackupFailed(f"{path} cannot be verified ({type(error).__name__}: {error})") from None
    finally:
        await copy.close()
    if problems:
        raise BackupFailed(f"{path} does not verify: {problems[0]}")
    return rows_checked


async def backup(db: Database, target: str) -> Verified:
    """A verified copy of the SQLite ledger at `target` (never over an existing file); a copy that does not verify
    is removed and BackupFailed says why."""
    if db.engine != "sqlite":
        raise BackupFailed("flask backup copies a SQLite ledger; on PostgreSQL use pg_dump (README, Backups)")
    try:
        size = await copy_of(db.path, target)
    except SnapshotRefused as error:
        raise BackupFailed(str(error)) from None
    try:
        rows_checked = await verify_copy(target)
    except BackupFailed:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        raise
    return Verified(target, rows_checked, size)


async def restore(db_path: str, source: str) -> tuple[int, str]:
    """Put the backup `source` in the place of the ledger at db_path: (rows its verify checked, the name the
    replaced file is kept under). Refused (nothing touched) when the backup does not verify, or while any other
    process holds the ledger."""
    rows_checked = await verify_copy(source)
    try:
        with held_alone(db_path):
            kept = put_in_place(source, db_path, file_stamp())
    except SnapshotRefused as error:
        raise BackupFailed(str(error)) from None
    return rows_checked, kept


class Schedule:
    """Verified backups every BACKUP_EVERY_MINUTES into BACKUP_DIR, keeping the latest BACKUP_KEEP, taken by one
    worker: whichever holds BACKUP_DIR/.schedule.lock (each tries at every tick, so another takes over when the
    holder stops). The first is taken as the server starts. A failed backup is logged as an error and deletes
    nothing."""

    def __init__(self, db: Database, folder: str, every_minutes: int, keep: int):
        self.db, self.folder, self.every_s, self.keep = db, folder, every_minutes * 60, keep
        self._lock_fd: int | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _is_mine(self) -> bool:
        if self._lock_fd is None:
            os.makedirs(self.folder, exist_ok=True)
            fd = os.open(os.path.join(self.folder, ".schedule.lock"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._lock_fd = fd
        return True

    async def _run(self) -> None:
        while True:
            try:
                if self._is_mine():
                    await self.take()
            except Exception:  # never stop the schedule: the next tick tries again
                log.exception("scheduled backup failed")
            await asyncio.sleep(self.every_s)

    async def take(self) -> Verified | None:
        """One scheduled backup, then the oldest beyond BACKUP_KEEP removed (only after a backup that verifies)."""
        name = f"{SCHEDULED_PREFIX}{file_stamp()}.db"
        try:
            made = await backup(self.db, os.path.join(self.folder, name))
        except BackupFailed as error:
            log.error("scheduled backup failed, nothing deleted: %s", error)
            return None
        log.info("backup %s: %d journal rows verified, %d bytes", made.path, made.rows_checked, made.size_bytes)
        for old in backups_in(self.folder, SCHEDULED_PREFIX)[:-self.keep]:
            old.unlink()
        return made
