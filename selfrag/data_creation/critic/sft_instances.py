"""Critic SFT data from judge labels: the original ``combine_chat_gpt_reward.py``.

Each labelled record becomes ``{"instruction", "input", "output", "task"}``: the critic
instruction and input template of :mod:`selfrag.data_creation.critic.templates`, and the label
string as the target. The result is shuffled with a seed and split into ``<name>_dev.json`` (the
first ``dev_size`` instances) and ``<name>_train.json`` (the rest), which the critic trainer
reads (:func:`selfrag.training.sft_data.load_examples`).

Records read, per file type:
- our labellers' records (:mod:`selfrag.data_creation.critic.judge_run`) and the gold-answer
  judge's: ``{"input": item, "label": <reflection token>, ...}``;
- the original labellers' records: ``decision_token`` (Retrieve) or ``score`` / the first line
  of ``raw_output`` (the others), read with the original's rules;
- for ``--ret_file`` also the older ``{"input": "##\\nTask instruction: ...", "output": "Yes"}``
  form the original combiner expected — it could not read its own labeller's ``decision_token``
  records; here both work.

Fixed original bugs (``faithful=True`` restores them): the preceding-sentences template of IsSup
was looked up on the record instead of its item (so the template without preceding sentences was
always used); the IsSup task was spelled ``groudness``. Only ``faithful=True`` keeps the
original's random down-sampling of ``[Relevant]`` (each kept with probability 0.7). The shuffle
is seeded. A record whose ``label`` is not a label of its file's type is an error naming the file
and line (a file passed to the wrong flag); records the judge left without a usable label are
skipped and counted, as in the original.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from selfrag.data_creation.critic.judge_items import has_preceding
from selfrag.data_creation.critic.labels import parse_label
from selfrag.data_creation.critic.templates import INSTRUCTIONS, format_input
from selfrag.errors import InputError, SelfRagError
from selfrag.io import read_records, write_json_atomic
from selfrag.tokens import (
    CONTINUE_EVIDENCE,
    ISREL_GROUP,
    ISSUP_GROUP,
    NO_RETRIEVAL,
    RELEVANT,
    RETRIEVAL,
    RETRIEVE_GROUP,
    UTILITY,
)

logger = logging.getLogger(__name__)

#: Probability that a ``[Relevant]`` instance is kept under ``faithful`` (the original's 0.7).
P_KEEP_RELEVANT = 0.7
DEFAULT_DEV_SIZE = 1500  # the original's dev split size
RESPONSE_MARKER = "### Response:"
_OLD_RETRIEVAL_MARKER = "##\nTask instruction: "
#: The file types, by the flag that names them.
FILE_TYPES = ("ut_file", "ret_file", "multi_ret_file", "multi_ground_file", "rel_file")
_TWO_WAY_PROMPTS = ("multi_retrieval", "multi_retrieval_no_preceding")


@dataclass(frozen=True)
class SftOptions:
    seed: int = 42
    dev_size: int = DEFAULT_DEV_SIZE
    faithful: bool = False


@dataclass
class Stats:
    """What the conversion kept and left out."""

    instances: Counter = field(default_factory=Counter)  # by (task, output)
    skipped: Counter = field(default_factory=Counter)  # by reason
    judges: Counter = field(default_factory=Counter)


class _Skip(Exception):
    """A record without a usable label: counted, not converted."""


def error_at(path: str, line: int):
    """The ``error`` argument of the :data:`CONVERTERS`: an InputError at ``path``, ``line``."""
    def error(message: str, field: str | None = None) -> InputError:
        return InputError(path, message, line=line, field=field)
    return error


def _item(record: Mapping, error) -> dict:
    item = record.get("input")
    if not isinstance(item, dict):
        raise error("must be the labelled item (a JSON object)", "input")
    return item


def _fill(mode: str, item: Mapping, error) -> str:
    try:
        return format_input(mode, item)
    except KeyError as err:
        raise error(f"missing (the {mode!r} template needs it)", f"input.{err.args[0]}") from None


def _our_label(record: Mapping, allowed: Sequence[str], flag: str, error) -> str | None:
    """The record's ``label`` (our labellers' field), checked against the file's type."""
    label = record.get("label")
    if label is None:
        return None
    if label not in allowed:
        raise error(f"{label!r} is not one of {list(allowed)}: a file of another label type "
                    f"given to --{flag}?", "label")
    return label


def _first_line_label(record: Mapping, allowed: Sequence[str]) -> str:
    """The original's rule for IsRel/IsSup: ``score``, else the first line of ``raw_output``."""
    score = record.get("score", "")
    if score == "":
        score = str(record.get("raw_output") or "").split("\n")[0]
    score = str(score).rstrip(" ")
    if score not in allowed:
        raise _Skip("no valid label")
    return score


def convert_utility(record: Mapping, error, options: SftOptions) -> dict:
    item = _item(record, error)
    label = _our_label(record, UTILITY, "ut_file", error)
    if label is None:
        score = record.get("score")  # the original accepts integer scores only
        if isinstance(score, bool) or score not in (1, 2, 3, 4, 5):
            raise _Skip("no 1-5 score")
        label = UTILITY[score - 1]
    return _instance("utility_instruction", "utility_input", item, label, "utility", error)


def convert_retrieval(record: Mapping, error, options: SftOptions) -> dict:
    """Input-only Retrieve: our records, the original labeller's, or the original combiner's."""
    item = record.get("input")
    if isinstance(item, str):  # {"input": "##\nTask instruction: ...", "output": "Yes"}
        if _OLD_RETRIEVAL_MARKER not in item:
            raise error(f"a string input must contain {_OLD_RETRIEVAL_MARKER!r}", "input")
        answer = str(record.get("output") or "")
        label = RETRIEVAL if "Yes" in answer else NO_RETRIEVAL if "No" in answer else None
        if label is None:
            raise _Skip("no Yes/No answer")
        item = {"instruction": item.split(_OLD_RETRIEVAL_MARKER)[1]}
    else:
        item = _item(record, error)
        label = _our_label(record, (RETRIEVAL, NO_RETRIEVAL), "ret_file", error)
        if label is None:  # the original labeller: decision_token "[Yes]" / "[No]"
            label = parse_label("retrieval", str(record.get("decision_token") or "")).label
            if label is None:
                raise _Skip("no valid label")
    return _instance("retrieval_instruction", "retrieval_input", item, label, "retrieval", error)


def convert_multi_retrieval(record: Mapping, error, options: SftOptions) -> dict:
    item = _item(record, error)
    label = _our_label(record, RETRIEVE_GROUP, "multi_ret_file", error)
    if label is None:
        label = record.get("decision_token")
        if label not in RETRIEVE_GROUP:
            raise _Skip("no valid label")
    # Records of our two-way prompt get the two-way instruction; the original gave every record
    # the three-way one.
    two_way = record.get("prompt") in _TWO_WAY_PROMPTS and label != CONTINUE_EVIDENCE
    if two_way and not options.faithful:
        return _instance("retrieval_multi_instruction", "retrieval_multi_input",
                         {"preceding_sentences": "", **item}, label, "multi_retrieval", error)
    preceding = has_preceding(item) and not options.faithful
    mode = ("multi_retrieval_three_way_input" if preceding
            else "multi_retrieval_three_way_input_wo_preceding")
    return _instance("multi_retrieval_three_way_instruction", mode,
                     {"preceding_sentences": "", **item}, label, "multi_retrieval", error)


def convert_relevance(record: Mapping, error, options: SftOptions) -> dict:
    item = _item(record, error)
    label = _our_label(record, ISREL_GROUP, "rel_file", error)
    if label is None:
        label = _first_line_label(record, ISREL_GROUP)
    return _instance("relevance_instruction", "relevance_input", item, label, "relevance", error)


def convert_groundness(record: Mapping, error, options: SftOptions) -> dict:
    item = _item(record, error)
    label = _our_label(record, ISSUP_GROUP, "multi_ground_file", error)
    if label is None:
        label = _first_line_label(record, ISSUP_GROUP)
    # The 1-5 scale variant's items name the output "output"; its label is already an IsSup token.
    item = {"target_output": item.get("output"), **item}
    preceding = has_preceding(item) and not options.faithful
    mode = "ground_multi_input" if preceding else "ground_multi_input_wo_preceding"
    task = "groudness" if options.faithful else "groundness"
    return _instance("ground_multi_instruction", mode, item, label, task, error)


CONVERTERS: dict[str, Callable[[Mapping, Callable, SftOptions], dict]] = {
    "ut_file": convert_utility,
    "ret_file": convert_retrieval,
    "multi_ret_file": convert_multi_retrieval,
    "multi_ground_file": convert_groundness,
    "rel_file": convert_relevance,
}


def _instance(inst_mode: str, input_mode: str, item: Mapping, label: str, task: str,
              error) -> dict:
    return {"instruction": INSTRUCTIONS[inst_mode], "input": _fill(input_mode, item, error),
            "output": label, "task": task}


def convert_files(files: Mapping[str, Sequence[str]], options: SftOptions,
                  stats: Stats | None = None) -> list[dict]:
    """Every record of ``files`` (``{file type: paths}``) as critic SFT instances, in file order.

    Raises:
        InputError: an unreadable file or a malformed record (file, line, field).
    """
    stats = stats if stats is not None else Stats()
    rng = random.Random(options.seed)
    instances = []
    for file_type in FILE_TYPES:
        convert = CONVERTERS[file_type]
        for path in files.get(file_type) or ():
            for line, record in read_records(path, allow_empty=True):  # checked as a whole
                try:
                    instance = convert(record, error_at(str(path), line), options)
                except _Skip as skip:
                    stats.skipped[f"{file_type}: {skip}"] += 1
                    continue
                if options.faithful and instance["output"] == RELEVANT and \
                        rng.random() > P_KEEP_RELEVANT:
                    stats.skipped["rel_file: [Relevant] down-sampled (--faithful)"] += 1
                    continue
                if RESPONSE_MARKER in instance["input"] or RESPONSE_MARKER in instance["instruction"]:
                    stats.skipped[f"contains {RESPONSE_MARKER!r}"] += 1
                    continue
                stats.judges[str(record.get("judge", "original labeller"))] += 1
                stats.instances[(instance["task"], instance["output"])] += 1
                instances.append(instance)
    return instances


def split(instances: list[dict], options: SftOptions) -> tuple[list[dict], list[dict]]:
    """``(train, dev)``: a seeded shuffle, then the first ``dev_size`` instances are dev."""
    shuffled = list(instances)
    random.Random(options.seed).shuffle(shuffled)
    return shuffled[options.dev_size:], shuffled[: options.dev_size]


def build_critic_sft(files: Mapping[str, Sequence[str]], output_name: str,
                     options: SftOptions) -> Stats:
    """Convert, split and write ``<output_name>_train.json`` and ``<output_name>_dev.json``.

    Both files are written only after every input has been read and checked.
    """
    stats = Stats()
    instances = convert_files(files, options, stats)
    if not instances:
        read = [str(p) for paths in files.values() for p in paths or ()]
        skipped = "; ".join(f"{reason}: {n}" for reason, n in sorted(stats.skipped.items()))
        raise SelfRagError(f"{', '.join(read) or 'no files'}: no critic training instances"
                           + (f" (skipped: {skipped})" if skipped else " (the inputs are empty)"))
    train, dev = split(instances, options)
    if not train:
        logger.warning("all %d instances went to the dev split (--dev_size %d): the train file "
                       "is empty", len(instances), options.dev_size)
    write_json_atomic(f"{output_name}_train.json", train)
    write_json_atomic(f"{output_name}_dev.json", dev)
    return stats


def describe(stats: Stats, output_name: str) -> str:
    """A short report: instances per task and label, skipped records, judges."""
    total = sum(stats.instances.values())
    lines = [f"{total} instances -> {output_name}_train.json / {output_name}_dev.json"]
    lines += [f"  {task} {label}: {n}" for (task, label), n in sorted(stats.instances.items())]
    lines += [f"  skipped, {reason}: {n}" for reason, n in sorted(stats.skipped.items())]
    lines += [f"  judge {judge}: {n}" for judge, n in sorted(stats.judges.items())]
    return "\n".join(lines)

