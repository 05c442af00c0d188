"""Supervised fine-tuning data: prompt + target, tokenized, with label masks, as the original
``finetune.py`` (generator) and ``train_special_tokens.py`` (critic).

One example becomes ``input_ids`` and ``labels``. Prompt and target are tokenized as one string,
so the tokens are the original's; ``labels`` is ``-100`` wherever the loss must not look (found
from character offsets; slow tokenizers without offsets tokenize prompt and target pieces apart):

- the whole prompt (``format_instruction_prompt`` for the generator, ``format_critic_prompt`` for the critic);
- with ``mask_paragraphs``, the content of every ``<paragraph>...</paragraph>`` span, one span at a
  time: the retrieved passage is evidence, not something to learn to write. The answer text,
  reflection tokens and markup between passages stay in the loss;
- optionally the reflection tokens themselves (the critic's ``--not_consider_special_tokens``).

``faithful=True`` reproduces the original's masking exactly, quirks included: the
prompt and target are tokenized together, only the first ``L-1`` prompt positions are masked (the
newline after ``### Response:`` is trained), and paragraph masking covers everything from the
first ``<paragraph>`` to the *last* ``</paragraph>``, answers in between included (issue #95).

Examples longer than ``max_seq_length`` are truncated (and counted); examples whose labels end up
all masked are dropped (and counted) by :func:`build_sft_dataset`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from selfrag.errors import InputError, SelfRagError
from selfrag.prompts import format_critic_prompt, format_instruction_prompt
from selfrag.tokens import PARAGRAPH_CLOSE, PARAGRAPH_OPEN, REFLECTION_TOKENS

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100
_MARKUP_SPLIT = re.compile(f"({re.escape(PARAGRAPH_OPEN)}|{re.escape(PARAGRAPH_CLOSE)})")
PromptFn = Callable[[str, "str | None"], str]


@dataclass(frozen=True)
class EncodeOptions:
    """How examples are turned into token ids and labels.

    Attributes:
        max_seq_length: longest sequence kept; longer ones are truncated at the end.
        mask_paragraphs: exclude the content of ``<paragraph>`` spans from the loss.
        mask_reflection_tokens: exclude the 15 reflection tokens from the loss (critic's
            ``--not_consider_special_tokens``).
        faithful: reproduce the original's masking, off-by-one and first-to-last span included.
        critic: use the critic prompt (no trailing newline, as ``train_special_tokens.py``)
            instead of the generator's.
    """

    max_seq_length: int = 512
    mask_paragraphs: bool = True
    mask_reflection_tokens: bool = False
    faithful: bool = False
    critic: bool = False


def check_paragraph_tags(text: str) -> str | None:
    """Return a description of the first tag problem in ``text``, or None when tags balance."""
    depth = 0
    for piece in _MARKUP_SPLIT.split(text):
        if piece == PARAGRAPH_OPEN:
            if depth:
                return f"nested {PARAGRAPH_OPEN} (a span opens before the previous one closed)"
            depth = 1
        elif piece == PARAGRAPH_CLOSE:
            if not depth:
                return f"{PARAGRAPH_CLOSE} without an opening {PARAGRAPH_OPEN}"
            depth = 0
    return f"{PARAGRAPH_OPEN} never closed" if depth else None


def validate_record(record: dict, path: str, line: int | None, check_tags: bool = True) -> dict:
    """Check one training record and return ``{"instruction", "input", "output"}``.

    Raises:
        InputError: a missing or non-string ``instruction``/``output``, a non-string ``input``,
            or (with ``check_tags``) unbalanced ``<paragraph>`` tags in ``output``.
    """
    clean = {}
    for field in ("instruction", "output"):
        value = record.get(field)
        if not isinstance(value, str):
            problem = "missing" if value is None else f"must be a string, got {type(value).__name__}"
            raise InputError(path, problem, line=line, field=field)
        clean[field] = value
    value = record.get("input") or ""
    if not isinstance(value, str):
        raise InputError(path, f"must be a string, got {type(value).__name__}", line=line,
                         field="input")
    clean["input"] = value
    if check_tags and (problem := check_paragraph_tags(clean["output"])):
        raise InputError(path, f"unbalanced paragraph tags: {problem}", line=line, field="output")
    return clean


def _eos(tokenizer) -> str:
    if tokenizer.eos_token is None:
        raise SelfRagError(f"tokenizer {tokenizer.name_or_path!r} has no eos token: cannot end targets")
    return tokenizer.eos_token


def encode_example(tokenizer, example: dict, options: EncodeOptions) -> dict:
    """Tokenize one ``{instruction, input, output}`` example into ids and masked labels.

    Returns:
        ``{"input_ids", "labels", "truncated"}``; ``truncated`` tells whether the example was cut
        at ``max_seq_length``.
    """
    prompt_fn: PromptFn = format_critic_prompt if options.critic else format_instruction_prompt
    prompt = prompt_fn(example["instruction"], example.get("input") or "")
    # Target = output + eos, as in the original.
    target = example["output"] + _eos(tokenizer)
    if options.faithful:
        input_ids, labels, truncated = _encode_faithful(tokenizer, prompt, target, options)
    else:
        input_ids, labels, truncated = _encode_fixed(tokenizer, prompt, target, options)
    if options.mask_reflection_tokens:
        reflection = {tokenizer.convert_tokens_to_ids(t) for t in REFLECTION_TOKENS}
        labels = [IGNORE_INDEX if i in reflection else lab for i, lab in zip(input_ids, labels)]
    return {"input_ids": input_ids, "labels": labels, "truncated": truncated}


def paragraph_content_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the contents of the ``<paragraph>...</paragraph>`` spans of ``text``.

    An unclosed span (only possible after truncation) runs to the end of the text.
    """
    spans, start = [], None
    for match in _MARKUP_SPLIT.finditer(text):
        if match.group() == PARAGRAPH_OPEN:
            start = match.end()
        elif start is not None:
            spans.append((start, match.start()))
            start = None
    if start is not None:
        spans.append((start, len(text)))
    return spans


def _encode_fixed(tokenizer, prompt: str, target: str, options: EncodeOptions):
    """Prompt + target tokenized as one string (the original's tokens); masks from char offsets."""
    if not getattr(tokenizer, "is_fast", False):
        return _encode_pieces(tokenizer, prompt, target, options)
    encoded = tokenizer(prompt + target, return_offsets_mapping=True)
    hidden = [(len(prompt) + a, len(prompt) + b) for a, b in paragraph_content_spans(target)
              ] if options.mask_paragraphs else []
    input_ids, labels = list(encoded["input_ids"]), []
    for token, (start, _) in zip(input_ids, encoded["offset_mapping"]):
        # The whole prompt is masked, its last token included (and any token straddling it).
        masked = start < len(prompt) or any(a <= start < b for a, b in hidden)
        labels.append(IGNORE_INDEX if masked else token)
    truncated = len(input_ids) > options.max_seq_length
    return input_ids[: options.max_seq_length], labels[: options.max_seq_length], truncated


def _encode_pieces(tokenizer, prompt: str, target: str, options: EncodeOptions):
    """Slow tokenizers (no offsets): prompt tokenized alone, target piece by piece."""
    input_ids = list(tokenizer(prompt)["input_ids"])
    labels = [IGNORE_INDEX] * len(input_ids)  # the whole prompt, last token included
    inside = False
    for piece in _MARKUP_SPLIT.split(target):
        if not piece:
            continue
        ids = tokenizer(piece, add_special_tokens=False)["input_ids"]
        masked = inside and options.mask_paragraphs and piece != PARAGRAPH_CLOSE
        input_ids.extend(ids)
        labels.extend([IGNORE_INDEX] * len(ids) if masked else ids)
        if piece == PARAGRAPH_OPEN:
            inside = True
        elif piece == PARAGRAPH_CLOSE:
            inside = False
    truncated = len(input_ids) > options.max_seq_length
    return input_ids[: options.max_seq_length], labels[: options.max_seq_length], truncated


def _encode_faithful(tokenizer, prompt: str, target: str, options: EncodeOptions):
    """The original's encoding, reproduced decision by decision (its
    ``encode_with_prompt_completion_format``)."""
    full = tokenizer(prompt + target, truncation=True, max_length=options.max_seq_length)
    input_ids = list(full["input_ids"])
    truncated = len(tokenizer(prompt + target)["input_ids"]) > options.max_seq_length
    prompt_len = len(tokenizer(prompt, truncation=True, max_length=options.max_seq_length)["input_ids"])
    labels = list(input_ids)
    # The generator trainer masks L-1 prompt positions (off by one); the critic's masks L.
    n_masked = prompt_len if options.critic else max(prompt_len - 1, 0)
    labels[:n_masked] = [IGNORE_INDEX] * n_masked
    if options.mask_paragraphs:
        open_id = tokenizer.convert_tokens_to_ids(PARAGRAPH_OPEN)
        close_id = tokenizer.convert_tokens_to_ids(PARAGRAPH_CLOSE)
        starts = [j for j, lab in enumerate(labels) if lab == open_id]
        if starts:
            start = starts[0] + 1
            closes = [j for j in range(start, len(labels)) if labels[j] == close_id]
            end = closes[-1] if closes else len(labels)  # last closing tag, or the end
            labels[start:end] = [IGNORE_INDEX] * (end - start)
    return input_ids, labels, truncated


@dataclass
class DataStats:
    """What happened to the examples on their way to the model (logged, never silent)."""

    read: int = 0
    truncated: int = 0
    dropped_all_masked: int = 0

    @property
    def kept(self) -> int:
        return self.read - self.dropped_all_masked

    def summary(self) -> str:
        return (f"{self.read} examples read, {self.truncated} truncated at max_seq_length, "
                f"{self.dropped_all_masked} dropped (every label masked), {self.kept} kept")


def load_examples(path: str, check_tags: bool = True) -> list[dict]:
    """Read a JSON list or JSONL file of ``{instruction, input, output}`` records, validated."""
    from selfrag.io import read_records

    return [validate_record(rec, path, line, check_tags) for line, rec in read_records(path, allow_empty=False)]


def load_hub_examples(name: str, config: str | None = None, check_tags: bool = True) -> list[dict]:
    """Load the ``train`` split of a ``datasets`` hub dataset (``--dataset_name``), validated."""
    import datasets

    split = datasets.load_dataset(name, config)["train"]
    return [validate_record(rec, name, i, check_tags) for i, rec in enumerate(split, start=1)]


def build_sft_dataset(tokenizer, examples: Iterable[dict], options: EncodeOptions,
                      num_proc: int | None = None, keep_in_memory: bool = True):
    """Encode examples into a ``datasets.Dataset`` with ``input_ids``, ``labels``, ``length``.

    Examples whose labels are all masked are dropped; truncations and drops are counted.

    Returns:
        ``(dataset, DataStats)``.
    """
    import datasets

    raw = datasets.Dataset.from_list(list(examples))
    stats = DataStats(read=len(raw))
    if not len(raw):
        raise SelfRagError("no training examples")

    def encode(example: dict) -> dict:
        encoded = encode_example(tokenizer, example, options)
        encoded["length"] = len(encoded["input_ids"])
        encoded["n_targets"] = sum(lab != IGNORE_INDEX for lab in encoded["labels"])
        return encoded

    encoded = raw.map(encode, remove_columns=raw.column_names, num_proc=num_proc,
                      keep_in_memory=keep_in_memory, desc="tokenizing")
    stats.truncated = int(sum(encoded["truncated"]))
    kept = encoded.filter(lambda n: n > 0, input_columns="n_targets", keep_in_memory=keep_in_memory)
    stats.dropped_all_masked = len(encoded) - len(kept)
    logger.info("training data: %s", stats.summary())
    if not len(kept):
        raise SelfRagError(f"every example is fully masked ({stats.summary()}): "
                           "raise max_seq_length or check the outputs")
    return kept.remove_columns(["truncated"]), stats
