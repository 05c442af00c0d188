"""Splitting an output into sentences with spaCy, keeping the text's own whitespace.

The original split with ``spacy.load("en_core_web_sm")`` and glued the sentences back together
without any separator, so ``"…in 1970s. The answer"`` became ``"…in 1970s.The answer"`` in the
released data. Here each sentence keeps the whitespace that followed it (``separator``), so the
sentences always join back into the original text exactly.

The statistical ``en_core_web_sm`` pipeline is used when installed, as in the original; otherwise a
blank English pipeline with spaCy's rule-based ``sentencizer``. Both tokenise with spaCy's
English exceptions, so abbreviations such as ``Dr.`` and ``U.S.`` are single tokens and never end
a sentence. :data:`Splitter.name` records which one ran (it is logged and written into the
pipeline's outputs).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)

STATISTICAL_MODEL = "en_core_web_sm"
RULE_BASED = "blank:en+sentencizer"
#: As in the original ``create_retrieval_data.py``: when an output has more than this many
#: sentences, short ones are not labelled.
SKIP_ABOVE_SENTENCES = 2
#: ... and "short" means fewer characters than this.
SHORT_SENTENCE_CHARS = 30


@dataclass(frozen=True)
class Sentence:
    """One sentence of an output.

    Attributes:
        text: the sentence without surrounding whitespace.
        separator: the whitespace that followed it in the output ('' for the last one, usually).
        skipped: too short to be labelled (the original's rule); it is copied into the output as is.
    """

    text: str
    separator: str
    skipped: bool = False


class Splitter:
    """A loaded spaCy pipeline that splits text into :class:`Sentence` lists.

    Args:
        model: ``"auto"`` (``en_core_web_sm`` when installed, else the rule-based sentencizer),
            ``"en_core_web_sm"`` (required) or ``"sentencizer"``.
    """

    def __init__(self, model: str = "auto"):
        import spacy

        self.nlp, self.name = None, RULE_BASED
        if model in ("auto", STATISTICAL_MODEL):
            try:
                self.nlp, self.name = spacy.load(STATISTICAL_MODEL), STATISTICAL_MODEL
            except OSError:
                if model == STATISTICAL_MODEL:
                    from selfrag.errors import SelfRagError

                    raise SelfRagError(f"spaCy model {STATISTICAL_MODEL} is not installed "
                                       "(python -m spacy download en_core_web_sm)") from None
        elif model != "sentencizer":
            raise ValueError(f"unknown splitter {model!r}; use auto, en_core_web_sm or sentencizer")
        if self.nlp is None:
            self.nlp = spacy.blank("en")
            self.nlp.add_pipe("sentencizer")
        logger.info("sentence splitter: %s (spaCy %s)", self.name, spacy.__version__)

    def split(self, text: str) -> list[Sentence]:
        """The sentences of ``text``; ``"".join(s.text + s.separator)`` gives ``text`` back
        (leading whitespace of ``text``, if any, is dropped)."""
        pieces = [sent.text_with_ws for sent in self.nlp(text).sents]
        cores: list[list[str]] = []  # [core, trailing whitespace]
        for piece in pieces:
            stripped = piece.lstrip()
            lead = piece[: len(piece) - len(stripped)]
            if cores:
                cores[-1][1] += lead  # whitespace spaCy put at a sentence start goes before it
            core = stripped.rstrip()
            if not core:
                continue
            cores.append([core, stripped[len(core):]])
        return mark_skipped([Sentence(core, ws) for core, ws in cores])


def mark_skipped(sentences: list[Sentence]) -> list[Sentence]:
    """As the original: with more than two sentences, those under 30 characters are skipped."""
    if len(sentences) <= SKIP_ABOVE_SENTENCES:
        return sentences
    return [Sentence(s.text, s.separator, len(s.text) < SHORT_SENTENCE_CHARS) for s in sentences]
