"""Input validation of short-form files: every error names file, line and field."""

import json

import pytest

from selfrag.errors import InputError
from selfrag.evaluation.tasks import load_short_form_examples


def write(tmp_path, rows, name="in.jsonl"):
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


CTX = [{"title": "T", "text": "x"}, {"title": "U", "text": "y"}]


def test_open_qa_examples(tmp_path):
    path = write(tmp_path, [{"question": "Who?", "answers": ["me"], "ctxs": CTX}])
    (example,) = load_short_form_examples(path, None, ndocs=1)
    assert example.prompt == "### Instruction:\nWho?\n\n### Response:\n"
    assert example.answers == ["me"] and example.passages == CTX[:1] and example.line == 1


def test_arc_numeric_labels_become_letters(tmp_path):
    row = {"question": "Q", "choices": {"label": ["1", "2"], "text": ["a", "b"]}, "answerKey": "2",
           "ctxs": CTX}
    (example,) = load_short_form_examples(write(tmp_path, [row]), "arc_c", ndocs=2)
    assert example.answers == ["B"] and example.instruction.endswith("\nA: a\nB: b")
    (faithful,) = load_short_form_examples(write(tmp_path, [row]), "arc_c", ndocs=2, faithful=True)
    assert faithful.answers == ["2"]


@pytest.mark.parametrize("rows, kwargs, message", [
    ([{"question": "Q", "ctxs": CTX}, "{not json"], {}, r"in\.jsonl, line 2: malformed JSON"),
    ([{"answers": ["a"], "ctxs": CTX}], {}, r"line 1: field 'question': missing"),
    ([{"question": "Q", "ctxs": []}], {}, r"line 1: field 'ctxs': no passages, but retrieval is on"),
    ([{"question": "Q", "ctxs": CTX}], {"ndocs": 5}, r"line 1: field 'ctxs': has 2 passages but --ndocs is 5"),
    ([{"question": "Q", "ctxs": [{"title": "T"}]}], {"ndocs": 1}, r"passage 0 needs a string 'text'"),
    ([{"question": "Q", "ctxs": CTX, "choices": {"label": ["A"], "text": ["a"]}}],
     {"task": "arc_c"}, r"field 'answerKey': missing"),
    ([{"question": "Q", "ctxs": CTX, "answers": ["a"]}, {"question": "R", "ctxs": CTX}], {},
     r"line 2: field 'answers': missing here"),
    ([{"question": "Q", "ctxs": CTX}, ["a list"]], {},
     r"line 2: each record must be a JSON object, not a list"),
    ([["a list"]], {}, r"line 1: found a JSON array, but a JSONL input holds one JSON object"),
])
def test_bad_input(tmp_path, rows, kwargs, message):
    kwargs = {"task": None, "ndocs": 2} | kwargs
    with pytest.raises(InputError, match=message):
        load_short_form_examples(write(tmp_path, rows), **kwargs)


def test_missing_file_and_no_retrieval_needs_no_passages(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_short_form_examples(tmp_path / "nope.jsonl", None, 1)
    path = write(tmp_path, [{"question": "Q", "answers": ["a"]}])
    (example,) = load_short_form_examples(path, None, 10, need_passages=False)
    assert example.passages == []


def test_json_list_files(tmp_path):
    path = tmp_path / "in.json"
    path.write_text(json.dumps([{"question": "Q", "answers": "a", "ctxs": CTX}]))
    (example,) = load_short_form_examples(path, "popqa", 2)
    assert example.answers == ["a"]
