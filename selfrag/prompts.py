"""Prompt templates, task instructions and passage formatting (after the original
``retrieval_lm/utils.py``).

Every string here is an interface fact: the released checkpoints were trained on exactly these
templates, so changing a single newline changes their behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from selfrag.tokens import PARAGRAPH_CLOSE, PARAGRAPH_OPEN, RETRIEVAL

# Generator prompt (the original ``finetune.py``): no system preamble, trailing newline after
# "### Response:".
PROMPT_NO_INPUT = "### Instruction:\n{instruction}\n\n### Response:\n"
PROMPT_WITH_INPUT = "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"

# Critic prompt (the original ``train_special_tokens.py``): like the generator's but with no
# trailing newline.
CRITIC_PROMPT_NO_INPUT = "### Instruction:\n{instruction}\n\n### Response:"
CRITIC_PROMPT_WITH_INPUT = "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"

ALPACA_PREAMBLE = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request."
)

#: Baseline templates of the original ``utils.PROMPT_DICT``.
BASELINE_PROMPTS: dict[str, str] = {
    "prompt_no_input": PROMPT_NO_INPUT,
    "prompt_no_input_retrieval": (
        ALPACA_PREAMBLE + "\n\n### Paragraph:\n{paragraph}\n\n### Instruction:\n{instruction}"
        "\n\n### Response:"
    ),
    "prompt_open_instruct": "<user>\n{instruction}\n<assistant>\n",
    "prompt_open_instruct_retrieval": "<user>\nReference:{paragraph}\n{instruction}\n<assistant>\n",
    "llama_chat_prompt": "[INST]{instruction}[/INST]",
    "llama_chat_prompt_retrieval": "[INST]{paragraph}\n{instruction}[/INST]",
}

#: Task instructions (the original ``utils.TASK_INST``). ``fever`` is also used for PubHealth at
#: evaluation time.
_MULTIPLE_CHOICE = "Given four answer candidates, A, B, C and D, choose the best answer choice."
TASK_INST: dict[str, str] = {
    "wow": (
        "Given a chat history separated by new lines, generates an informative, knowledgeable "
        "and engaging response. "
    ),
    "fever": (
        "Is the following statement correct or not? Say true if it's correct; otherwise say false."
    ),
    "eli5": (
        "Provide a paragraph-length response using simple words to answer the following question."
    ),
    "obqa": _MULTIPLE_CHOICE,
    "arc_easy": _MULTIPLE_CHOICE,
    "arc_c": _MULTIPLE_CHOICE,
    "arc_hard": _MULTIPLE_CHOICE,
    "trex": "Given the input format 'Subject Entity [SEP] Relationship Type,' predict the target entity.",
    "asqa": (
        "Answer the following question. The question may be ambiguous and have multiple correct "
        "answers, and in that case, you have to provide a long-form answer including all correct "
        "answers."
    ),
}

#: Other names of evaluation tasks (the one table of them): PubHealth is evaluated as FEVER
#: (closed-set true/false, FEVER's instruction), ``arc`` is ARC-Challenge.
TASK_ALIASES: dict[str, str] = {"pubhealth": "fever", "arc": "arc_c"}


def canonical_task(task: str | None) -> str | None:
    """The task name the prompts and the answer rules are keyed by (``pubhealth`` -> ``fever``)."""
    return TASK_ALIASES.get(task, task)


def format_prompt(input: str, paragraph: str | None = None) -> str:
    """The generator prompt for ``input``, as the original README's quick start writes it.

    With ``paragraph``, the passage follows as ``[Retrieval]<paragraph>{paragraph}</paragraph>``
    (the model continues with its IsRel token); pass ``title + "\n" + text`` as the checkpoints
    saw passages (:func:`passage_text`). The parameter is named ``input`` as in the original.
    """
    prompt = PROMPT_NO_INPUT.format(instruction=input)
    return prompt if paragraph is None else prompt + evidence_block(paragraph)


def format_instruction_prompt(instruction: str, input: str | None = None) -> str:
    """The generator's training prompt of an ``{instruction, input}`` example (the original's
    ``PROMPT_DICT``): the ``### Input:`` block appears only when ``input`` is non-empty."""
    if input:
        return PROMPT_WITH_INPUT.format(instruction=instruction, input=input)
    return PROMPT_NO_INPUT.format(instruction=instruction)


def format_critic_prompt(instruction: str, input: str | None = None) -> str:
    if input:
        return CRITIC_PROMPT_WITH_INPUT.format(instruction=instruction, input=input)
    return CRITIC_PROMPT_NO_INPUT.format(instruction=instruction)


def passage_text(passage: Mapping) -> str:
    """``title\\ntext`` as the checkpoints saw passages in training."""
    return f"{passage.get('title') or ''}\n{passage['text']}"


def evidence_block(paragraph: str) -> str:
    """``[Retrieval]<paragraph>{paragraph}</paragraph>``: how a passage enters the generation."""
    return f"{RETRIEVAL}{PARAGRAPH_OPEN}{paragraph}{PARAGRAPH_CLOSE}"


def format_evidence(passage: Mapping) -> str:
    """``[Retrieval]<paragraph>{title}\\n{text}</paragraph>``, appended right after the prompt."""
    return evidence_block(passage_text(passage))


def choice_letter(label: str) -> str:
    """ARC labels come as ``A``-``E`` or ``1``-``5``; both map to letters."""
    label = str(label).strip()
    return chr(ord("A") + int(label) - 1) if label.isdigit() else label


def format_choices(labels: Sequence[str], texts: Sequence[str], faithful: bool = False) -> str:
    """The ``\\nA: ...\\nB: ...`` block appended to ARC questions (as the original does).

    By default every option is listed under its letter. ``faithful`` reproduces the original:
    exactly A-D, a missing option left empty and a fifth option (E) dropped.
    """
    options = {choice_letter(label): text for label, text in zip(labels, texts)}
    if faithful:
        return "".join(f"\n{letter}: {options.get(letter, '')}" for letter in "ABCD")
    return "".join(f"\n{letter}: {text}" for letter, text in options.items())


def short_form_instruction(question: str, task: str | None, choices: Mapping | None = None,
                           faithful: bool = False) -> str:
    """Compose the short-form instruction (the original ``preprocess_input_data``; note the
    differing separators, kept as is).

    - ``arc_c``: ``TASK_INST + "\\n\\n### Input:\\n" + question + choices``
    - other tasks with an instruction (``fever``): ``TASK_INST + "\\n\\n## Input:\\n\\n" + question``
    - open-domain QA: the bare question.
    """
    if task == "arc_c":
        block = format_choices(choices["label"], choices["text"], faithful) if choices else ""
        return TASK_INST[task] + "\n\n### Input:\n" + question + block
    if task in TASK_INST:
        return TASK_INST[task] + "\n\n## Input:\n\n" + question
    return question


def long_form_instruction(question: str, task: str) -> str:
    """Long-form and training-data form: ``TASK_INST + "## Input:\\n\\n" + question``."""
    if task in TASK_INST:
        return TASK_INST[task] + "## Input:\n\n" + question
    return question
