"""parse_label: every reply form judges write, for every label kind; no label is ever guessed."""

import pytest

from selfrag.data_creation.critic.labels import KINDS, parse_label, split_reply
from selfrag.tokens import (
    CONTINUE_EVIDENCE,
    FULLY_SUPPORTED,
    IRRELEVANT,
    NO_RETRIEVAL,
    NO_SUPPORT,
    PARTIALLY_SUPPORTED,
    RELEVANT,
    RETRIEVAL,
    UTILITY,
)

READABLE = [
    # Retrieve, input-only: the judge answers [Yes] / [No].
    ("retrieval", "[Yes]\nExplanation: facts help.", RETRIEVAL),
    ("retrieval", " [No]", NO_RETRIEVAL),
    ("retrieval", "Need retrieval?: [Yes]", RETRIEVAL),
    ("retrieval", "Yes", RETRIEVAL),
    ("retrieval", "no.", NO_RETRIEVAL),
    ("retrieval", "[Retrieval]", RETRIEVAL),
    ("retrieval", "[No Retrieval]", NO_RETRIEVAL),
    # Retrieve per sentence, two- and three-way.
    ("multi_retrieval", "Rating: [Retrieval]\nExplanation: x", RETRIEVAL),
    ("multi_retrieval", "[no retrieval]", NO_RETRIEVAL),
    ("multi_retrieval", "No Retrieval", NO_RETRIEVAL),
    ("multi_retrieval_three_way", "[Continue to Use Evidence]", CONTINUE_EVIDENCE),
    ("multi_retrieval_three_way", "Rating: continue to use evidence", CONTINUE_EVIDENCE),
    ("multi_retrieval_three_way", "[Retrieval]", RETRIEVAL),
    # IsRel.
    ("relevance", "[Relevant]", RELEVANT),
    ("relevance", "Rating: [Irrelevant]\nExplanation: wrong country", IRRELEVANT),
    ("relevance", "Relevant", RELEVANT),
    ("relevance", "**Irrelevant**", IRRELEVANT),
    ("relevance", "Rating:\n[Relevant].\n\nExplanation: fine", RELEVANT),
    # IsSup, three labels.
    ("groundness", "[Fully supported]", FULLY_SUPPORTED),
    ("groundness", "Score: [Partially supported]\nExplanation: half", PARTIALLY_SUPPORTED),
    ("groundness", "[No support / Contradictory]", NO_SUPPORT),
    ("groundness", "No support/Contradictory", NO_SUPPORT),
    ("groundness", "fully supported", FULLY_SUPPORTED),
    ("groundness", "[contradictory]", NO_SUPPORT),
    ("groudness", "[Fully supported]", FULLY_SUPPORTED),  # the original's spelling of the kind
    # IsSup, 1-5 scale: 5-4 fully, 3-2 partially, 1 no support.
    ("groundness_scale", "Score: 4\nExplanation: mostly", FULLY_SUPPORTED),
    ("groundness_scale", "5", FULLY_SUPPORTED),
    ("groundness_scale", "3 (Partially supported)", PARTIALLY_SUPPORTED),
    ("groundness_scale", "Score: 2", PARTIALLY_SUPPORTED),
    ("groundness_scale", "1", NO_SUPPORT),
    # IsUse.
    ("utility", "[Utility:4]", UTILITY[3]),
    ("utility", "Perceived utility: 5\nExplanation: complete", UTILITY[4]),
    ("utility", "Score: 4", UTILITY[3]),
    ("utility", "2", UTILITY[1]),
    ("utility", "[Utility: 3]", UTILITY[2]),
    ("utility", "Perceived utility: [1]", UTILITY[0]),
    ("utility", "4/5", UTILITY[3]),
    ("utility", "Score: 3 out of 5", UTILITY[2]),
]


@pytest.mark.parametrize(("kind", "reply", "label"), READABLE)
def test_reply_forms_are_read(kind, reply, label):
    assert parse_label(kind, reply).label == label


UNREADABLE = [
    ("relevance", "[Relevant] [Irrelevant]", "several labels"),
    ("relevance", "Rating: [Relevant] or maybe [Irrelevant]", "several labels"),
    ("groundness", "[Fully supported], [Partially supported]", "several labels"),
    ("multi_retrieval_three_way", "[Retrieval] [Continue to Use Evidence]", "several labels"),
    ("utility", "4 or 5", "several scores"),
    ("utility", "[Utility:2] [Utility:5]", "several labels"),
    ("relevance", "", "no label"),
    ("utility", "", "no label"),
    ("retrieval", "   \n", "no label"),
    ("relevance", "The evidence is relevant to the question.", "no label"),
    ("utility", "Perceived utility: 7", "no label"),
    ("utility", "Score: 4.5", "no label"),
    ("groundness", "[Relevant]", "no label"),  # a label of another kind is not this kind's
    ("multi_retrieval", "[Continue to Use Evidence]", "no label"),  # not a two-way label
    ("retrieval", "Maybe", "no label"),
]


@pytest.mark.parametrize(("kind", "reply", "problem"), UNREADABLE)
def test_ambiguous_or_empty_replies_give_no_label_and_say_why(kind, reply, problem):
    parsed = parse_label(kind, reply)
    assert parsed.label is None and parsed.problem == problem


def test_explanation_is_split_off_and_kept():
    parsed = parse_label("relevance", "[Irrelevant]\nExplanation: it is about the Senate.")
    assert parsed.decision == "[Irrelevant]" and parsed.explanation == "it is about the Senate."
    assert split_reply("Score: 4") == ("Score: 4", "")


def test_scores_are_reported_for_scale_kinds_only():
    assert parse_label("utility", "[Utility:2]").score == 2
    assert parse_label("utility", "Score: 5").score == 5
    assert parse_label("groundness_scale", "Score: 3").score == 3
    assert parse_label("relevance", "[Relevant]").score is None


def test_every_kind_reads_its_own_tokens():
    for kind in KINDS.values():
        for token in kind.tokens:
            assert parse_label(kind, f"{token}\nExplanation: e").label == token, (kind.name, token)
