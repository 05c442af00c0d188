"""The reflection tokens of Self-RAG.

This module is the only place where a reflection-token string is spelled. The strings and their
order are interface facts: the released checkpoints (``selfrag/selfrag_llama2_7b``, ``..._13b``)
added them in this order, so they sit at ids 32000-32014 of those tokenizers, followed by
``<pad>`` at 32015 (their ``added_tokens.json``).
"""

from __future__ import annotations

from dataclasses import dataclass

from selfrag.errors import SelfRagError

# Retrieve
NO_RETRIEVAL = "[No Retrieval]"
RETRIEVAL = "[Retrieval]"
CONTINUE_EVIDENCE = "[Continue to Use Evidence]"
# IsRel
IRRELEVANT = "[Irrelevant]"
RELEVANT = "[Relevant]"
# Context markup
PARAGRAPH_OPEN = "<paragraph>"
PARAGRAPH_CLOSE = "</paragraph>"
# IsUse, [Utility:1] ... [Utility:5]
UTILITY = tuple(f"[Utility:{i}]" for i in range(1, 6))
# IsSup
FULLY_SUPPORTED = "[Fully supported]"
PARTIALLY_SUPPORTED = "[Partially supported]"
NO_SUPPORT = "[No support / Contradictory]"
# Padding token the original training adds next to the reflection tokens.
PAD = "<pad>"

#: The 15 strings in the order the original training code adds them.
REFLECTION_TOKENS: tuple[str, ...] = (
    NO_RETRIEVAL,
    RETRIEVAL,
    CONTINUE_EVIDENCE,
    IRRELEVANT,
    RELEVANT,
    PARAGRAPH_OPEN,
    PARAGRAPH_CLOSE,
    *UTILITY,
    FULLY_SUPPORTED,
    PARTIALLY_SUPPORTED,
    NO_SUPPORT,
)

RETRIEVE_GROUP = (NO_RETRIEVAL, RETRIEVAL, CONTINUE_EVIDENCE)
ISREL_GROUP = (IRRELEVANT, RELEVANT)
ISSUP_GROUP = (FULLY_SUPPORTED, PARTIALLY_SUPPORTED, NO_SUPPORT)
ISUSE_GROUP = UTILITY
MARKUP_GROUP = (PARAGRAPH_OPEN, PARAGRAPH_CLOSE)

#: Tokens removed from final answers. All 15: the original's list forgets
#: ``[Continue to Use Evidence]`` (``control_tokens`` in its ``utils.py``), which
#: ``FAITHFUL_CONTROL_TOKENS`` reproduces.
CONTROL_TOKENS: tuple[str, ...] = REFLECTION_TOKENS
FAITHFUL_CONTROL_TOKENS: tuple[str, ...] = tuple(t for t in REFLECTION_TOKENS if t != CONTINUE_EVIDENCE)


class MissingReflectionTokensError(SelfRagError):
    """The tokenizer does not map every reflection token to a single id of its own."""


@dataclass(frozen=True)
class ReflectionTokenIds:
    """Token ids of the reflection tokens in one tokenizer, by group."""

    by_token: dict[str, int]

    def id(self, token: str) -> int:
        return self.by_token[token]

    def ids(self, tokens: tuple[str, ...]) -> list[int]:
        return [self.by_token[t] for t in tokens]

    @property
    def all_ids(self) -> list[int]:
        """Ids of all 15 tokens, in :data:`REFLECTION_TOKENS` order."""
        return self.ids(REFLECTION_TOKENS)


def _single_id(tokenizer, token: str) -> int | None:
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or (isinstance(token_id, list)):
        return None
    if tokenizer.unk_token_id is not None and token_id == tokenizer.unk_token_id:
        return None
    if tokenizer.convert_ids_to_tokens(token_id) != token:
        return None
    return token_id


def reflection_token_ids(tokenizer) -> ReflectionTokenIds:
    """Look up the id of every reflection token in an HF tokenizer.

    Raises:
        MissingReflectionTokensError: if any of the 15 strings is not one token of its own (the
            model was not trained with Self-RAG's reflection tokens, or they were never added).
    """
    found: dict[str, int] = {}
    missing = []
    for token in REFLECTION_TOKENS:
        token_id = _single_id(tokenizer, token)
        if token_id is None:
            missing.append(token)
        else:
            found[token] = token_id
    if missing:
        name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        raise MissingReflectionTokensError(
            f"tokenizer {name!r} lacks {len(missing)} of the 15 Self-RAG reflection tokens "
            f"(e.g. {missing[0]!r}): use a Self-RAG checkpoint such as selfrag/selfrag_llama2_7b, "
            "the offline default 'smollm2-135m', or add them with selfrag.tokens.add_reflection_tokens"
        )
    return ReflectionTokenIds(found)


def add_reflection_tokens(tokenizer, model=None) -> int:
    """Register the 15 reflection tokens (and ``<pad>`` if the tokenizer has no pad token).

    When a model is given, its embeddings are resized and each new row is initialised with the
    mean embedding of the sub-words the string was split into before (``[Relevant]`` starts as the
    mean of ``[``, ``Relevant``, ``]`` ...): a far better start than random rows, and it gives an
    untrained model token-specific, context-dependent reflection probabilities. Output embeddings
    that are not tied get the same treatment.

    Returns:
        The number of tokens added to the tokenizer.
    """
    pieces = {t: tokenizer(t, add_special_tokens=False)["input_ids"] for t in REFLECTION_TOKENS}
    special = {"extra_special_tokens": list(REFLECTION_TOKENS)}
    if tokenizer.pad_token is None:
        special["pad_token"] = PAD
        pieces[PAD] = []
    added = tokenizer.add_special_tokens(special, replace_extra_special_tokens=False)
    if model is None:
        return added
    import torch

    old_rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > old_rows:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    tables = [model.get_input_embeddings().weight]
    output = model.get_output_embeddings()
    if output is not None and output.weight.data_ptr() != tables[0].data_ptr():
        tables.append(output.weight)
    with torch.no_grad():
        for table in tables:
            mean_row = table[:old_rows].mean(dim=0)
            for token, piece_ids in pieces.items():
                token_id = tokenizer.convert_tokens_to_ids(token)
                if token_id < old_rows:
                    continue  # already part of the vocabulary: keep its trained row
                piece_ids = [i for i in piece_ids if i < old_rows]
                table[token_id] = table[piece_ids].mean(dim=0) if piece_ids else mean_row
    return added
