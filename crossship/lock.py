"""One run at a time: a non-blocking ``flock`` on ``<database>.lock``.

The lock dies with its process (kill -9 included), so a crash never leaves a stale lock; the file
itself is never deleted, since deleting it would let two runs lock two different files.

While it holds the lock, a run writes one line into the file: its process id and when it took the
lock, so that `crossship check` can tell how long the lock has been held without taking it. The
line is cleared on release; a line left by a killed run names a process that no longer exists.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from crossship.errors import LockHeld, StoreError
from crossship.i18n import _
from crossship.paths import lock_path
from crossship.timeutil import to_db, utcnow


@dataclass(frozen=True)
class Holder:
    """Who holds the lock: its process id and when it took the lock (UTC, database text)."""

    pid: int
    since: str


class RunLock:
    def __init__(self, db_path: Path, now: datetime | None = None):
        self.path = lock_path(db_path)
        self._now = now
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(
                _("cannot open lock file {path}: {error}").format(
                    path=self.path, error=exc.strerror
                )
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeld(
                _("another crossship run holds the lock {path}; nothing was done").format(
                    path=self.path
                )
            ) from None
        self._fd = fd
        since = to_db(self._now or utcnow())
        _rewrite(fd, json.dumps({"pid": os.getpid(), "since": since}) + "\n")

    def release(self) -> None:
        if self._fd is not None:
            _rewrite(self._fd, "")
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _rewrite(fd: int, text: str) -> None:
    # the holder line is a hint for `crossship check`: failing to write it never stops a run
    try:
        os.ftruncate(fd, 0)
        if text:
            os.pwrite(fd, text.encode("ascii"), 0)
    except OSError:
        pass


def holder(db_path: Path) -> Holder | None:
    """The run holding the lock now, read without taking the lock; None when it is free.

    A line whose process is gone (a run killed with -9) means the lock is free: flock died with it.
    """
    try:
        text = lock_path(db_path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    try:
        data = json.loads(text)
        found = Holder(pid=int(data["pid"]), since=str(data["since"]))
        datetime.fromisoformat(found.since)
    except (ValueError, KeyError, TypeError):
        return None
    if found.pid <= 0 or not _alive(found.pid):
        return None
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
