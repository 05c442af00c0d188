"""What the critic model reads: its instructions and input templates (the original
``combine_chat_gpt_reward.py`` and ``run_reward_vllm.py``).

The critic is trained on ``{"instruction": <critic instruction>, "input": <formatted input>,
"output": <label>}`` and queried with the same pair, so both the SFT data (``combine``) and the
critic runs of the generator-data pipeline take their strings from here.

The input templates, the instruction keys, ``retrieval_instruction`` and
``relevance_instruction`` are the original's interface strings. The other instructions are our
own wording of the same task (the original's long texts are not reproduced here); they name the
same label strings. A critic trained by this project reads exactly these; to query the released
``selfrag/self_rag_critic`` with its training wording, pass a JSON file of instructions
(``--critic_instructions``) — see :func:`load_instructions`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from selfrag.errors import InputError, SelfRagError
from selfrag.io import read_text
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

#: Input templates by ``--input_mode`` name (interface strings of the original
#: ``combine_chat_gpt_reward.py``).
INPUT_TEMPLATES: dict[str, str] = {
    "retrieval_input": "Task instruction: {instruction}",
    "relevance_input": "Task instruction: {instruction}\nEvidence: {evidence}",
    "utility_input": "Task instruction: {instruction}\nOutput: {output}",
    "ground_input": "##\nTask instruction: {instruction}\nEvidence: {evidence}\nOutput: {output}",
    "ground_multi_input": (
        "Task instruction: {instruction}\nPreceding sentences: {preceding_sentences}\n"
        "Output: {target_output}\nEvidence: {evidence}"
    ),
    "ground_multi_input_wo_preceding": (
        "Task instruction: {instruction}\nOutput: {target_output}\nEvidence: {evidence}"
    ),
    "retrieval_multi_input": (
        "Task instruction: {instruction}\nPreceding sentences: {preceding_sentences}\n"
        "Evidence: {evidence}\nOutput: {target_output}"
    ),
    "multi_retrieval_three_way_input": (
        "Task instruction: {instruction}\nPreceding sentences: {preceding_sentences}\n"
        "Evidence: {evidence}\nOutput: {target_output}"
    ),
    # Identical to the one above despite its name, as in the original.
    "multi_retrieval_three_way_input_wo_preceding": (
        "Task instruction: {instruction}\nPreceding sentences: {preceding_sentences}\n"
        "Evidence: {evidence}\nOutput: {target_output}"
    ),
}

_UTILITY_SCALE = (
    f"{UTILITY[4]}: The response provides a complete, highly detailed, and informative answer "
    "that fully satisfies the information needs.\n"
    f"{UTILITY[3]}: The response mostly fulfills the need, with only minor gaps or imprecision.\n"
    f"{UTILITY[2]}: The response is acceptable but misses some information the query asks for.\n"
    f"{UTILITY[1]}: The response touches on the main request but leaves most of it unanswered.\n"
    f"{UTILITY[0]}: The response is barely on-topic or entirely unrelated."
)

#: Critic instructions by ``--inst_mode`` name.
INSTRUCTIONS: dict[str, str] = {
    # Verbatim interface strings (the original ``combine_chat_gpt_reward.py``).
    "retrieval_instruction": (
        "When provided with instruction, please evaluate whether seeking additional information "
        "from external sources such as the web (e.g., Wikipedia) aids in producing a more "
        f"comprehensive response. Respond with either {RETRIEVAL} or {NO_RETRIEVAL}."
    ),
    "relevance_instruction": (
        "When given instruction and evidence, evaluate whether the evidence is relevant to the "
        "instruction and provides valuable information for generating meaningful responses.\n"
        f"Use a rating of {RELEVANT} to indicate relevance and usefulness, and {IRRELEVANT} to "
        "indicate irrelevance."
    ),
    # Our wording of the remaining tasks.
    "retrieval_multi_instruction": (
        "You will be given an instruction, the sentences written so far, evidence, and the next "
        "output sentence. Decide whether verifying the output sentence needs more information "
        f"than the evidence gives. Answer {RETRIEVAL} if it does, and {NO_RETRIEVAL} if the "
        "evidence is enough or the sentence needs no verification."
    ),
    "multi_retrieval_three_way_instruction": (
        "You will be given an instruction, the sentences written so far, evidence, and the next "
        "output sentence. Decide what the sentence needs. Answer "
        f"{CONTINUE_EVIDENCE} if the evidence alone verifies it, {RETRIEVAL} if verifying it "
        f"needs further information, and {NO_RETRIEVAL} if it is subjective or common sense "
        "and needs no verification."
    ),
    "ground_instruction": (
        "You will be given an instruction, evidence, and an output. Rate on a scale of 1 to 5 how "
        "far the evidence supports the output: 5 fully supported, 4 mostly supported, "
        "3 partially supported, 2 little support, 1 unsupported or contradicted. Judge only "
        "support by the evidence, not instruction-following and not your own knowledge."
    ),
    "ground_multi_instruction": (
        "You will be given an instruction, evidence, and an output sentence (with the sentences "
        "before it when there are any). Judge whether the output is supported by the evidence "
        "alone, without external knowledge and regardless of instruction-following. Answer "
        f"{FULLY_SUPPORTED} if every claim in the output is backed by the evidence, "
        f"{PARTIALLY_SUPPORTED} if only part of it is, and {NO_SUPPORT} if the output ignores "
        "the evidence, is unrelated to it, or contradicts it."
    ),
    "utility_instruction": (
        "Given an instruction and an output, rate whether the response appears to be a helpful "
        "and informative answer to the query, from 1 (lowest) to 5 (highest). We call this "
        "score perceived utility. The detailed criterion is as follows:\n" + _UTILITY_SCALE
    ),
}

#: The inference prompt of the original critic runs (``run_reward_vllm.py``, split != train):
#: the Alpaca preamble with an input block. The critic was trained *without* the preamble
#: (:func:`selfrag.prompts.format_critic_prompt`); our runs use the training prompt by default.
ALPACA_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)


def format_input(mode: str, fields: Mapping[str, object]) -> str:
    """Fill the input template ``mode`` from ``fields``.

    Raises:
        SelfRagError: unknown template name.
        KeyError: a field the template needs is missing (callers turn it into an InputError).
    """
    if mode not in INPUT_TEMPLATES:
        raise SelfRagError(f"unknown input template {mode!r}; choose from {sorted(INPUT_TEMPLATES)}")
    return INPUT_TEMPLATES[mode].format_map(
        {key: "" if value is None else value for key, value in fields.items()})


def load_instructions(path: str | Path | None) -> dict[str, str]:
    """The instructions, with the entries of a JSON object file (``{inst_mode: text}``) replacing
    ours — for querying a critic trained on other wording, such as the released one."""
    instructions = dict(INSTRUCTIONS)
    if path is None:
        return instructions
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        overrides = json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise InputError(path, f"malformed JSON: {err.msg}", line=err.lineno) from None
    if not isinstance(overrides, dict):
        raise InputError(path, "must hold a JSON object {inst_mode: instruction}")
    for key, value in overrides.items():
        if key not in INSTRUCTIONS:
            raise InputError(path, f"unknown instruction key; choose from {sorted(INSTRUCTIONS)}",
                             field=key)
        if not isinstance(value, str) or not value.strip():
            raise InputError(path, "must be a non-empty string", field=key)
        instructions[key] = value
    return instructions
