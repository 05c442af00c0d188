"""Progress journals survive crashes and refuse foreign settings."""

import os

import pytest

from selfrag.errors import SelfRagError
from selfrag.resume import Journal, input_identity, model_identity, run_in_chunks


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


def test_run_in_chunks_resumes_with_the_same_chunks_and_removes_its_journal(tmp_path):
    path, seen = tmp_path / "out.partial", []

    def work(chunk):
        seen.append(list(chunk))
        if 5 in chunk and not crashed:
            raise KeyboardInterrupt  # killed in the third chunk
        return [10 * i for i in chunk]

    crashed = False
    with pytest.raises(KeyboardInterrupt):
        run_in_chunks(range(7), work, list, chunk_size=2, journal_path=path, fingerprint={"k": 1})
    assert seen == [[0, 1], [2, 3], [4, 5]] and path.is_file()
    crashed, seen = True, []
    written = run_in_chunks(range(7), work, lambda outputs: ("written", outputs), chunk_size=2,
                            journal_path=path, fingerprint={"k": 1})
    assert seen == [[4, 5], [6]]  # the journaled chunks are not run again
    assert written == ("written", [0, 10, 20, 30, 40, 50, 60])
    assert not path.exists()


def test_other_settings_are_refused(tmp_path):
    path = tmp_path / "run.partial"
    Journal(path, {"threshold": 0.2}).append({"chunk": 0})
    with pytest.raises(SelfRagError, match="other settings"):
        Journal(path, {"threshold": 0.5}).load()


def test_a_refusal_names_what_differs(tmp_path):
    path = tmp_path / "run.partial"
    Journal(path, {"mode": "a", "inputs": {"input_file": 1}, "model": "m", "k": 1}).append({})
    with pytest.raises(SelfRagError) as err:
        Journal(path, {"mode": "b", "inputs": {"input_file": 2}, "model": "m", "k": 1}).load()
    assert "(different: input file content, --mode);" in str(err.value)


def test_input_identity_follows_the_content(tmp_path):
    # issue 12 item 1: an edited input is another input, whatever its name and size
    path = tmp_path / "in.jsonl"
    path.write_text('{"q": "a"}\n')
    before = input_identity(path)
    path.write_text('{"q": "b"}\n')
    assert input_identity(path) != before and input_identity(path)["path"] == str(path)
    assert input_identity(tmp_path / "missing.jsonl") is None and input_identity(None) is None


def test_model_identity_changes_when_a_local_models_files_do(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"12345678")
    before = model_identity(str(folder))
    assert model_identity(str(folder)) == before
    os.utime(folder / "model.safetensors", ns=(1, 1))  # same size, rewritten
    assert model_identity(str(folder)) != before
    assert model_identity("org/hub-model") == "org/hub-model"
