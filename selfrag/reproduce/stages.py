"""Cached, timed, resumable stages of one experiment folder.

A stage is a function that writes its outputs under the experiment folder and returns a small
JSON summary. :class:`StageRunner` runs it unless ``.stages/<name>.json`` records a finished run
with the same fingerprint (the stage's settings plus the fingerprints of every stage before it),
so a rerun skips what is done, and a changed setting (or a deleted marker) reruns that stage
and all after it: the chain includes each earlier stage's run id. The
stages themselves resume inside (the entry points they call journal their work), so a run killed
with ``kill -9`` continues where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from selfrag.errors import SelfRagError
from selfrag.io import write_atomic, write_json_atomic

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


class StageRunner:
    """Runs named stages in order in ``out_dir``, skipping those already done.

    Args:
        out_dir: the experiment folder.
        log: where progress lines go (printed and appended to ``out_dir/stages.log``).
    """

    def __init__(self, out_dir: str | os.PathLike, log: Callable[[str], None] = print):
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self._log = log
        self.chain = "start"
        self.records: dict[str, dict] = {}

    def log(self, message: str) -> None:
        self._log(message)
        with open(self.out / "stages.log", "a", encoding="utf-8") as handle:
            handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")

    def run(self, name: str, settings: Mapping, body: Callable[[], dict],
            fresh: Sequence[str] = ()) -> dict:
        """Run ``body`` unless stage ``name`` with these ``settings`` (and history) is done.

        ``fresh``: the stage's resumable outputs (paths or glob patterns under the folder:
        checkpoints, journals). They are deleted before a run of other settings or history
        than the run that left them, so that only an interrupted run of the *same* stage
        resumes from them; a changed setting never continues an earlier run's training.
        """
        fingerprint = digest({"previous": self.chain, "settings": settings})
        marker = self.out / ".stages" / f"{name}.json"
        if marker.is_file():
            record = json.loads(marker.read_text(encoding="utf-8"))
            if record.get("fingerprint") == fingerprint:
                self.log(f"[{name}] done before ({record['seconds']:.0f} s), skipped")
                self.chain, self.records[name] = digest(record), record
                return record["summary"]
        started = self.out / ".stages" / f"{name}.started"
        if started.is_file() and started.read_text(encoding="utf-8") == fingerprint:
            self.log(f"[{name}] resuming an interrupted run")
        else:
            for pattern in fresh:
                for path in self.out.glob(pattern):
                    if path.is_dir():
                        shutil.rmtree(path)
                    else:
                        path.unlink()
            write_atomic(started, fingerprint)
        self.log(f"[{name}] running")
        start = time.monotonic()
        summary = body()
        seconds = time.monotonic() - start
        record = {"stage": name, "fingerprint": fingerprint, "settings": dict(settings),
                  "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "run_id": uuid.uuid4().hex,
                  "seconds": round(seconds, 1),
                  "summary": summary}
        write_json_atomic(marker, record, indent=1)
        self.log(f"[{name}] finished in {seconds:.0f} s")
        self.chain, self.records[name] = digest(record), record
        return summary


def run_command(args: Sequence[str], log_file: str | os.PathLike, env: Mapping | None = None) -> None:
    """Run one of the project's entry points (``python <script> ...``) with its output in a log.

    Raises:
        SelfRagError: the command failed (the log's last lines are in the message).
    """
    command = [sys.executable, *map(str, args)]
    log_file = Path(log_file)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                **(env or {})}
    with open(log_file, "a", encoding="utf-8") as handle:
        handle.write("$ " + " ".join(command) + "\n")
        handle.flush()
        status = subprocess.run(command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
                                env=full_env, check=False).returncode
    if status != 0:
        tail = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        raise SelfRagError(f"{Path(args[0]).name} failed (exit {status}); log {log_file}:\n"
                           + "\n".join(tail))


def git_commit() -> str:
    """The checkout's commit (recorded with the results), or ``"unknown"``."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
