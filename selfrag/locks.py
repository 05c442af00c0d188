"""Exclusive file locks that leave no ``.lock`` file behind.

A lock is an ``flock`` on a small file holding the owner's pid. The holder deletes the file
before it lets go, so finished runs leave nothing behind. Deleting a lock file is safe only
because every taker checks, once it holds the lock, that the file it locked is still the one at
the path (a taker that waited on a file deleted meanwhile takes the new one instead).
"""

from __future__ import annotations

import fcntl
import os
from contextlib import ExitStack, contextmanager
from pathlib import Path

from selfrag.errors import SelfRagError
from selfrag.io import check_output


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


_HELD: set[Path] = set()  # output locks this process holds (taking one again is a no-op)


@contextmanager
def output_lock(path: str | os.PathLike, flag: str | None = None):
    """Hold ``<path>.lock`` while a run writes ``path`` (a file or a folder): a second run on the
    same output is refused at once, naming the process that holds it, instead of both writing
    into one file. Re-entrant within a process.

    Raises:
        SelfRagError: another process holds the lock.
    """
    lock = Path(f"{path}.lock").absolute()
    if lock in _HELD:
        yield
        return
    check_output(path, flag or "output", folder=Path(path).is_dir())  # a clear error, not mkdir's
    stack = ExitStack()
    try:
        stack.enter_context(file_lock(lock, wait=False))
    except LockHeld as held:
        who = f"process {held.pid}" if held.pid is not None else "another process"
        raise SelfRagError(f"{(flag + ' ') if flag else ''}{path} is being written by another "
                           f"run ({who}, holding {lock}); wait for it to finish or write "
                           "elsewhere") from None
    with stack:
        _HELD.add(lock)
        try:
            yield
        finally:
            _HELD.discard(lock)
