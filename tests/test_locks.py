"""Exclusive file locks: a second taker is told the holder's pid; no lock file stays behind."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from selfrag.locks import LockHeld, file_lock

HOLD = """
import sys, time
from selfrag.locks import file_lock
with file_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(30)
"""


def test_a_held_lock_names_the_holders_pid_and_is_removed_after(tmp_path):
    path = tmp_path / "out.json.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(LockHeld) as err, file_lock(path, wait=False):
            pass
        assert err.value.pid == holder.pid
    finally:
        holder.kill()
        holder.wait()
    with file_lock(path, wait=False):  # the dead holder's lock went with it
        assert path.read_text() == f"{os.getpid()}\n"
    assert not path.exists()


def test_waiters_take_turns_although_each_holder_deletes_the_file(tmp_path):
    path, inside, overlaps = tmp_path / "x.lock", [], []

    def work():
        for _ in range(20):
            with file_lock(path):
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(1)
                time.sleep(0.001)
                inside.pop()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not overlaps and not path.exists()


HOLD_OUTPUT = """
import sys, time
from selfrag.locks import output_lock
with output_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


class OtherRun:
    """Another process holding the output lock of ``path`` (issue 12 item 2)."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        self.process = subprocess.Popen([sys.executable, "-c", HOLD_OUTPUT, str(self.path)],
                                        stdout=subprocess.PIPE, text=True, env=env)
        assert self.process.stdout.readline() == "held\n"
        return self.process

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


def test_an_output_held_by_another_run_is_refused_naming_its_pid(tmp_path):
    from selfrag.errors import SelfRagError
    from selfrag.locks import output_lock

    out = tmp_path / "out.json"
    with OtherRun(out) as other, pytest.raises(SelfRagError) as err, output_lock(out, "--o"):
        pass
    assert str(err.value) == (f"--o {out} is being written by another run (process {other.pid}, "
                              f"holding {out}.lock); wait for it to finish or write elsewhere")
    with output_lock(out), output_lock(out):  # re-entrant within a process
        assert (tmp_path / "out.json.lock").is_file()
    assert not (tmp_path / "out.json.lock").exists()
