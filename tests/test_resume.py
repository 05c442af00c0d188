"""Progress journals survive crashes and refuse foreign settings."""

import pytest

from selfrag.errors import SelfRagError
from selfrag.resume import Journal


def test_units_round_trip_and_torn_tail_is_dropped(tmp_path):
    path = tmp_path / "run.partial"
    journal = Journal(path, {"model": "m", "k": 1})
    journal.append({"chunk": 0})
    journal.append({"chunk": 1})
    with path.open("a") as handle:
        handle.write('{"chunk": 2, "resu')  # a crash in the middle of a write
    assert Journal(path, {"k": 1, "model": "m"}).load() == [{"chunk": 0}, {"chunk": 1}]
    journal.append({"chunk": 2})
    assert [u["chunk"] for u in journal.load()] == [0, 1, 2]


def test_other_settings_are_refused(tmp_path):
    path = tmp_path / "run.partial"
    Journal(path, {"threshold": 0.2}).append({"chunk": 0})
    with pytest.raises(SelfRagError, match="other settings"):
        Journal(path, {"threshold": 0.5}).load()
