"""Passage corpora as the original read them (DPR TSV and JSONL), with located errors for bad
rows."""

import pytest

from selfrag.errors import InputError
from selfrag.retrieval.passages import load_passages


def test_tsv_skips_header_keeps_string_ids_and_reads_quoted_fields(tmp_path):
    path = tmp_path / "psgs.tsv"
    path.write_text('id\ttext\ttitle\n1\t"He said ""hi""\tend"\tA\n007\tplain\tB\n',
                    encoding="utf-8")
    assert load_passages(path) == [
        {"id": "1", "title": "A", "text": 'He said "hi"\tend'},
        {"id": "007", "title": "B", "text": "plain"},
    ]


def test_tsv_ragged_row_names_file_and_line(tmp_path):
    path = tmp_path / "psgs.tsv"
    path.write_text("id\ttext\ttitle\n1\tt\tA\n2\tonly two\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"psgs\.tsv, line 3: expected 3 tab-separated"):
        load_passages(path)


def test_duplicate_id_is_an_error_naming_both_lines(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "a", "title": "", "text": "x"}\n{"id": "b", "text": "y"}\n'
                    '{"id": "a", "title": "T", "text": "z"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"line 3: field 'id': duplicate passage id 'a' "
                                         r"\(first seen on line 1\)"):
        load_passages(path)


def test_jsonl_integer_ids_become_strings_and_missing_title_is_empty(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": 5, "text": "x"}\n', encoding="utf-8")
    assert load_passages(path) == [{"id": "5", "title": "", "text": "x"}]


@pytest.mark.parametrize("line, field", [('{"title": "t", "text": "x"}', "id"),
                                         ('{"id": "1", "title": "t"}', "text"),
                                         ('{"id": "1", "text": "x", "title": 3}', "title")])
def test_jsonl_missing_or_bad_fields_are_located(tmp_path, line, field):
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "0", "text": "ok"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_passages(path)
    assert (err.value.line, err.value.field) == (2, field)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_passages(tmp_path / "nope.tsv")
