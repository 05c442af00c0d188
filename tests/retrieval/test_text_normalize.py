"""The original's text normalisation (``src/normalize_text.py``), and passage/query text helpers."""

from selfrag.retrieval.normalize import normalize_text
from selfrag.retrieval.passages import passage_text, prepare_text


def test_normalize_maps_typography_to_ascii():
    assert normalize_text("\u201cHi\u201d \u2018a\u2019 x\u2013y\u2014z \u2212 1\u20262\u20443") == \
        "\"Hi\" 'a' x-y-z - 1...2/3"


def test_normalize_removes_controls_and_soft_hyphen_and_maps_separators_to_space():
    assert normalize_text("a\x00b\x07c\u00add\x0be\x0cf\x85g\th\ni") == "abcd e f g\th\ni"


def test_normalize_primes_become_apostrophes():
    assert normalize_text("5\u2032 6\u2033 7\u2034 8\u2057") == "5' 6'' 7''' 8''''"


def test_normalize_keeps_tilde_and_plain_text():
    assert normalize_text("caf\u00e9 ~ \uff5e ok") == "caf\u00e9 ~ \uff5e ok"


def test_passage_text_prepends_title_unless_disabled_or_empty():
    p = {"id": "1", "title": "Paris", "text": "Capital of France."}
    assert passage_text(p) == "Paris Capital of France."
    assert passage_text(p, use_title=False) == "Capital of France."
    assert passage_text({**p, "title": ""}) == "Capital of France."
    assert passage_text(p, lowercase=True) == "paris capital of france."


def test_prepare_text_lowercases_then_normalizes():
    assert prepare_text("\u201cA\u201d", lowercase=True, normalize=True) == '"a"'
