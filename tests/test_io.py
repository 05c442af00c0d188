"""Reading inputs: every problem is one InputError naming the file, the line and what was expected."""

import json

import pytest

from selfrag.errors import InputError
from selfrag.io import read_records

RECORDS = [{"question": "Q1"}, {"question": "Q2"}]


@pytest.mark.parametrize("text", [json.dumps(RECORDS, indent=2), json.dumps(RECORDS)],
                         ids=["pretty", "one-line"])
def test_a_json_array_in_a_jsonl_file_says_what_was_expected(tmp_path, text):
    # issue 12 item 12: was "malformed JSON: Expecting value" (pretty) / "must be an object"
    path = tmp_path / "in.jsonl"
    path.write_text(text + "\n")
    with pytest.raises(InputError) as err:
        read_records(path)
    message = str(err.value)
    assert message.startswith(f"{path}, line 1: ")
    assert "JSON array" in message and "one JSON object per line" in message
    assert "rename it to .json" in message


def test_jsonl_content_in_a_json_file_says_what_was_expected(tmp_path):
    path = tmp_path / "in.json"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    with pytest.raises(InputError) as err:
        read_records(path)
    message = str(err.value)
    assert message.startswith(f"{path}, line 2: ")
    assert "one JSON object per line" in message and "rename it to .jsonl" in message


def test_a_json_array_file_still_reads(tmp_path):
    path = tmp_path / "in.json"
    path.write_text(json.dumps(RECORDS, indent=2))
    assert read_records(path) == [(1, RECORDS[0]), (2, RECORDS[1])]


@pytest.mark.parametrize("name", ["in.jsonl", "in.json"])
def test_bytes_that_are_not_utf8_name_the_file_and_line(tmp_path, name):
    # issue 12 item 9: was a UnicodeDecodeError traceback
    path = tmp_path / name
    lines = [b'[{"question": "Q1"},', b'{"question": "caf\xe9"}]'] if name.endswith(".json") else [
        b'{"question": "Q1"}', b'{"question": "caf\xe9"}']
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(InputError) as err:
        read_records(path)
    assert str(err.value) == (f"{path}, line 2: not UTF-8 text (byte 0xe9 at column 18); "
                              "re-encode the file as UTF-8")


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(RECORDS[0]).encode() + b"\n")
    assert read_records(path) == [(1, RECORDS[0])]


BAD_UTF8 = b"caf\xe9"


def _not_utf8(path, line):
    return rf"^{path}, line {line}: not UTF-8 text \(byte 0xe9 at column \d+\); re-encode"


def test_every_library_reader_names_the_file_and_line_of_bytes_that_are_not_utf8(tmp_path,
                                                                                monkeypatch):
    # issue 12 item 9: each of these raised a UnicodeDecodeError traceback
    from selfrag.baselines.tables import score_run
    from selfrag.data_creation.critic.templates import load_instructions
    from selfrag.lm.openai_completions import resolve_api_key
    from selfrag.retrieval.passages import load_passages

    tsv = tmp_path / "psgs.tsv"
    tsv.write_bytes(b"id\ttext\ttitle\n1\tok\tT\n2\t" + BAD_UTF8 + b"\tU\n")
    with pytest.raises(InputError, match=_not_utf8(tsv, 3)):
        load_passages(tsv)

    output = tmp_path / "out.json"
    output.write_bytes(b'{"preds": ["a"],\n "golds": [["' + BAD_UTF8 + b'"]]}\n')
    with pytest.raises(InputError, match=_not_utf8(output, 2)):
        score_run("m", "popqa", output)

    overrides = tmp_path / "inst.json"
    overrides.write_bytes(b'{"retrieval": "' + BAD_UTF8 + b'"}\n')
    with pytest.raises(InputError, match=_not_utf8(overrides, 1)):
        load_instructions(overrides)

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    key = tmp_path / "key.txt"
    key.write_bytes(b"sk-" + BAD_UTF8 + b"\n")
    with pytest.raises(InputError, match=_not_utf8(key, 1)):
        resolve_api_key(str(key))


@pytest.mark.parametrize("name, text", [("in.jsonl", ""), ("in.jsonl", "\n\n"), ("in.json", "[]"),
                                        ("in.json", '{"data": []}')])
def test_an_empty_input_is_an_error_when_not_allowed(tmp_path, name, text):
    # issue 12 item 5: entry points read their inputs with allow_empty=False (every one is checked
    # by tests/integration/test_bad_input_corpus.py); a step's own output may be empty
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError, match=r"no records \(the input is empty\)$"):
        read_records(path, allow_empty=False)
    assert read_records(path) == []


def test_output_problems_are_found_before_anything_is_computed(tmp_path):
    # issue 12 item 10: these failed only when the output was written, after the whole run
    from selfrag.errors import SelfRagError
    from selfrag.io import check_output, output_problem

    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    assert output_problem(tmp_path / "folder") == "is a folder, not a file"
    assert output_problem(tmp_path / "file", folder=True) == "is a file, not a folder"
    assert output_problem(tmp_path / "file" / "sub" / "out.json") == (
        f"cannot be created: {tmp_path / 'file'} is a file, not a folder")
    assert output_problem(tmp_path / "new" / "deeper" / "out.json") is None
    assert output_problem(tmp_path / "file") is None and output_problem(tmp_path / "folder", True) is None
    with pytest.raises(SelfRagError, match=r"^--output_file .*folder: is a folder, not a file$"):
        check_output(tmp_path / "folder", "--output_file")
