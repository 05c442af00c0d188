"""Exclusive file locks that leave no ``.lock`` file behind.

A lock is an ``flock`` on a small file holding the owner's pid. The holder deletes the file
before it lets go, so finished runs leave nothing behind. Deleting a lock file is safe only
because every taker checks, once it holds the lock, that the file it locked is still the one at
the path (a taker that waited on a file deleted meanwhile takes the new one instead).
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path


class LockHeld(Exception):
    """The lock is taken by another process (``pid``: its id, when it could be read)."""

    def __init__(self, path: Path, pid: int | None):
        self.path, self.pid = path, pid
        super().__init__(f"{path} is held by process {pid if pid is not None else '(unknown)'}")


@contextmanager
def file_lock(path: str | os.PathLike, wait: bool = True):
    """Hold an exclusive lock on ``path`` (created, with this process's pid, and removed after).

    Args:
        wait: wait for another holder to finish; ``False`` raises :class:`LockHeld` at once.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise LockHeld(path, pid) from None
        try:
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)  # the holder we waited for removed this file: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        path.unlink(missing_ok=True)  # still locked: nobody can take this file meanwhile
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
