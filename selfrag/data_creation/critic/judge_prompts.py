"""Prompts that ask an LLM judge (GPT-4 in the paper) for the critic's labels.

Each prompt has the structure of the original's: a task description, demonstrations separated
by ``##`` lines, then the test item, ending with the label field (``Rating:``, ``Score:``,
``Need retrieval?:``, ``Perceived utility:``) for the judge to complete with a label line and an
``Explanation:`` line. The label strings are the interface (they become critic targets); the
descriptions and demonstrations are our own wording and examples.

Variants, by name (the labeller picks one per item, see
:mod:`selfrag.data_creation.critic.judge_items`):

- ``retrieval``: Retrieve from the instruction alone; the judge answers ``[Yes]`` / ``[No]``.
- ``multi_retrieval`` / ``multi_retrieval_no_preceding``: Retrieve for one output sentence given
  the evidence (with or without the sentences before it); ``[Retrieval]`` / ``[No Retrieval]``.
- ``multi_retrieval_three_way`` / ``..._no_preceding``: adds ``[Continue to Use Evidence]``.
- ``relevance`` / ``relevance_multi`` / ``relevance_multi_no_preceding``: IsRel.
- ``groundness_multi`` / ``groundness_multi_no_preceding``: IsSup with the three labels.
- ``groundness_context``: IsSup on the 1–5 entailment scale.
- ``utility``: IsUse, perceived utility 1–5.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from selfrag.tokens import (
    CONTINUE_EVIDENCE,
    FULLY_SUPPORTED,
    IRRELEVANT,
    NO_RETRIEVAL,
    NO_SUPPORT,
    PARTIALLY_SUPPORTED,
    RELEVANT,
    RETRIEVAL,
)

#: Line between demonstrations, and before the test item (as in the original prompts).
SEPARATOR = "##"
_ANSWER_FORMAT = ("Write your answer on the first line after '{field}:', then one line starting "
                  "with 'Explanation:' that gives your reasons.")


@dataclass(frozen=True)
class Demonstration:
    """One worked example: the item's fields (by item key), the answer and its explanation."""

    fields: Mapping[str, str]
    answer: str
    explanation: str


@dataclass(frozen=True)
class JudgePrompt:
    """One prompt design.

    Attributes:
        name: the variant's name (stored in each output record as ``prompt``).
        kind: the label kind of :data:`selfrag.data_creation.critic.labels.KINDS` its replies hold.
        description: the task description.
        fields: ``(shown name, item key)`` of each item field, in prompt order.
        label_field: the field the judge completes (without the colon).
        demonstrations: the worked examples.
    """

    name: str
    kind: str
    description: str
    fields: tuple[tuple[str, str], ...]
    label_field: str
    demonstrations: tuple[Demonstration, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        """The item keys the prompt reads."""
        return tuple(key for _, key in self.fields)

    def render(self, item: Mapping[str, object]) -> str:
        """The full prompt for ``item`` (which must hold every key of :attr:`keys`)."""
        blocks = [f"{self.description}\n{_ANSWER_FORMAT.format(field=self.label_field)}"]
        for demo in self.demonstrations:
            blocks.append(f"{SEPARATOR}\n{self._fields_text(demo.fields)}\n"
                          f"{self.label_field}: {demo.answer}\nExplanation: {demo.explanation}")
        blocks.append(f"{SEPARATOR}\n{self._fields_text(item)}\n{self.label_field}:")
        return "\n\n".join(blocks)

    def _fields_text(self, values: Mapping[str, object]) -> str:
        return "\n".join(f"{shown}: {_text(values[key])}" for shown, key in self.fields)


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


# -- Retrieve ------------------------------------------------------------------------------------
_RETRIEVAL_DESCRIPTION = (
    "You will see an instruction. Decide whether looking up external documents, such as web "
    "pages or Wikipedia articles, would help to write a better response to it. Answer [Yes] if "
    "retrieved documents would help and [No] if they would not."
)
_RETRIEVAL_DEMOS = (
    Demonstration({"instruction": "List three ways to lower blood pressure without medication."},
                  "[Yes]", "Medical guidance and studies on lifestyle changes give reliable, "
                  "specific advice that makes the answer more trustworthy."),
    Demonstration({"instruction": "Tell me about a moment when you changed your mind about "
                                  "something important."},
                  "[No]", "The request is about a personal experience; no document can supply it."),
    Demonstration({"instruction": "Write a short poem about autumn from the point of view of a "
                                  "tree."},
                  "[No]", "This is creative writing and needs no facts to be checked."),
    Demonstration({"instruction": "Which river flows through Vienna?"},
                  "[Yes]", "It is a factual question; even if the answer is well known, a "
                  "retrieved article confirms it and can add useful detail."),
    Demonstration({"instruction": "Compute the perimeter of a rectangle that is 3 cm wide and "
                                  "5 cm long."},
                  "[No]", "A short calculation answers it; no document states this exact result."),
    Demonstration({"instruction": "Put these words in alphabetical order: pear, apple, fig."},
                  "[No]", "Sorting words needs no outside information."),
    Demonstration({"instruction": "Describe how vaccines train the immune system."},
                  "[Yes]", "A detailed scientific explanation benefits from an authoritative "
                  "source describing the mechanism."),
)

_SENTENCE_CONTEXT = (
    "You will see an instruction, possibly the sentences of the response written so far, a "
    "piece of evidence, and the next output sentence (which follows the preceding sentences "
    "when they are given). "
)
_MULTI_RETRIEVAL_DESCRIPTION = _SENTENCE_CONTEXT + (
    "Decide whether checking the output sentence needs information beyond the evidence. Answer "
    f"{RETRIEVAL} if more information must be looked up to verify it, and {NO_RETRIEVAL} if the "
    "evidence is enough to verify it or it needs no verification at all."
)
_THREE_WAY_DESCRIPTION = _SENTENCE_CONTEXT + (
    "Decide what is needed to verify the output sentence. There are three answers:\n"
    f"- {CONTINUE_EVIDENCE}: the evidence alone is enough to verify the sentence.\n"
    f"- {NO_RETRIEVAL}: the sentence states nothing that needs checking (an opinion, a "
    "transition, or common sense).\n"
    f"- {RETRIEVAL}: verifying the sentence needs information the evidence does not give."
)
_BEES = {
    "instruction": "Describe how honeybees communicate with each other.",
    "preceding_sentences": "Honeybees live in large colonies and depend on cooperation to find "
                           "food.",
    "evidence": "Waggle dance\nThe waggle dance is a figure-eight movement that a worker honeybee "
                "performs in the hive to tell its nestmates the direction and distance of a "
                "patch of flowers.",
}
_MULTI_RETRIEVAL_DEMOS = (
    Demonstration({**_BEES, "target_output": "Bees can also learn to recognise individual human "
                                             "faces after training."},
                  RETRIEVAL, "The evidence is only about the waggle dance; the claim about face "
                  "recognition needs another source to be checked."),
    Demonstration({**_BEES, "target_output": "With the waggle dance, a bee shows the others which "
                                             "way to fly to reach flowers."},
                  NO_RETRIEVAL, "The evidence states this directly, so nothing more is needed."),
)
_THREE_WAY_DEMOS = (
    Demonstration(_MULTI_RETRIEVAL_DEMOS[0].fields, RETRIEVAL,
                  _MULTI_RETRIEVAL_DEMOS[0].explanation),
    Demonstration(_MULTI_RETRIEVAL_DEMOS[1].fields, CONTINUE_EVIDENCE,
                  "The evidence alone verifies the sentence."),
    Demonstration({**_BEES, "target_output": "It is remarkable how much such small insects can "
                                             "achieve together."},
                  NO_RETRIEVAL, "This is an opinion; it contains no fact to verify."),
)
_SENTENCE_FIELDS = (("Instruction", "instruction"), ("Preceding sentences", "preceding_sentences"),
                    ("Evidence", "evidence"), ("Output", "target_output"))
_SENTENCE_FIELDS_NO_PRECEDING = tuple(f for f in _SENTENCE_FIELDS if f[1] != "preceding_sentences")

# -- IsRel ---------------------------------------------------------------------------------------
_RELEVANCE_DESCRIPTION = (
    "You will see an instruction, a piece of evidence and possibly the sentences of the response "
    "written so far. Decide whether the evidence is relevant to the instruction (and to the "
    "preceding sentences when they are given) and gives useful information for completing the "
    f"task. Answer {RELEVANT} if it does and {IRRELEVANT} if it does not."
)
_MOON = Demonstration(
    {"instruction": "Choose the best answer among A, B, C and D.\nWhy does the Moon shine at "
                    "night?\nA: it burns gas\nB: it reflects sunlight\nC: it stores daylight\n"
                    "D: it is heated by the Earth",
     "evidence": "The Moon gives off no light of its own; what we see is sunlight bouncing off "
                 "its surface."},
    RELEVANT, "The evidence says the Moon's light is reflected sunlight, which settles option B.")
_PRESIDENT = Demonstration(
    {"instruction": "minimum age to become president of france",
     "evidence": "Under the United States Constitution, a president must be at least 35 years "
                 "old and a natural-born citizen."},
    IRRELEVANT, "The evidence is about the presidency of the United States, not of France.")
_SCIENTIST = Demonstration(
    {"instruction": "Write about a scientist you admire.",
     "preceding_sentences": "Few scientists have shown as much persistence as Marie Curie, who "
                            "carried out her research on radioactivity in a leaky shed.",
     "evidence": "Isaac Newton formulated the laws of motion and universal gravitation in his "
                 "Principia, published in 1687."},
    IRRELEVANT, "The response so far is about Marie Curie; evidence about Isaac Newton does not "
    "help to continue it.")
_PRECEDING_NONE = "(none)"

# -- IsSup ---------------------------------------------------------------------------------------
_GROUND_MULTI_DESCRIPTION = (
    "You will see an instruction, an output, a piece of evidence and possibly the sentences "
    "before the output. Judge how far the evidence supports the output, using these labels:\n"
    f"{FULLY_SUPPORTED}: everything the output states is found in the evidence or directly "
    "taken from it.\n"
    f"{PARTIALLY_SUPPORTED}: the evidence backs part of the output, but an important part of it "
    "is not discussed in the evidence (for example, the output covers two topics and the "
    "evidence only one).\n"
    f"{NO_SUPPORT}: the output ignores the evidence, has nothing to do with it, or contradicts "
    "it; this includes evidence that is off-topic for the instruction.\n"
    "Do not use your own knowledge to decide whether the output is true, and do not judge "
    "whether it follows the instruction: judge only its support by the evidence."
)
_GROUND_FIELDS = (("Instruction", "instruction"), ("Preceding sentences", "preceding_sentences"),
                  ("Output", "target_output"), ("Evidence", "evidence"))
_GROUND_FIELDS_NO_PRECEDING = tuple(f for f in _GROUND_FIELDS if f[1] != "preceding_sentences")
_COFFEE = {
    "instruction": "Summarise what is known about the origins of coffee.",
    "preceding_sentences": "Coffee is one of the most widely traded agricultural products.",
    "evidence": "Coffee\nThe earliest credible evidence of coffee drinking appears in the 15th "
                "century in Sufi monasteries of Yemen, where roasted beans were brewed much as "
                "they are today.",
}
_GROUND_MULTI_DEMOS = (
    Demonstration({**_COFFEE, "target_output": "People in Yemen were already brewing roasted "
                                               "coffee beans in the 15th century."},
                  FULLY_SUPPORTED, "The evidence says exactly this: 15th-century Yemen, roasted "
                  "beans brewed as today."),
    Demonstration({**_COFFEE, "target_output": "Coffee drinking began in 15th-century Yemen and "
                                               "reached Venice a century later."},
                  PARTIALLY_SUPPORTED, "The Yemeni origin is in the evidence, but nothing is said "
                  "about Venice."),
)
_GROUND_SCALE_DESCRIPTION = (
    "You will see an instruction, a piece of evidence and an output. Rate how far the evidence "
    "supports the output on this scale:\n"
    "5: fully supported - all of the output's information is in the evidence.\n"
    "4: mostly supported - most of it is in the evidence, with minor unsupported details.\n"
    "3: partially supported - the evidence backs some of it, but important parts are missing.\n"
    "2: little support - the evidence touches the topic but backs almost none of the output.\n"
    "1: no support - the output ignores or contradicts the evidence.\n"
    "Judge only support by the evidence: not the truth of the output by your own knowledge, and "
    "not whether it follows the instruction."
)
_GROUND_SCALE_DEMO = Demonstration(
    {"instruction": "When was the Eiffel Tower built, and why?",
     "evidence": "The Eiffel Tower was built between 1887 and 1889 as the entrance arch for the "
                 "1889 World's Fair in Paris.",
     "output": "The Eiffel Tower was completed in 1889 as the gateway to the World's Fair, and "
               "it was the tallest structure in the world for about forty years."},
    "4", "The date and purpose are in the evidence; the claim about its height record is not.")

# -- IsUse ---------------------------------------------------------------------------------------
_UTILITY_DESCRIPTION = (
    "You will see an instruction and a response. Rate how helpful and informative the response "
    "looks as an answer to the instruction, from 1 (lowest) to 5 (highest); we call this the "
    "perceived utility. Criteria:\n"
    "5: complete, detailed and informative; it fully meets the information need.\n"
    "4: mostly meets the need; small improvements are possible (more detail, better structure "
    "or coherence).\n"
    "3: acceptable, but clear additions or improvements are needed to satisfy the user.\n"
    "2: addresses the main request, but is incomplete or not quite relevant.\n"
    "1: barely on-topic or entirely off-topic."
)
_UTILITY_DEMOS = (
    Demonstration({"instruction": "What was the population of Canada in 2021?",
                   "output": "Canada is a large country in North America made up of ten "
                             "provinces and three territories."},
                  "2", "The response is about Canada but never gives the population asked for."),
    Demonstration({"instruction": "Suggest a plan for one day of sightseeing in Rome.",
                   "output": "Start at the Colosseum in the morning, then walk to the Roman "
                             "Forum. In the afternoon, visit the Pantheon and the Trevi "
                             "Fountain."},
                  "3", "It gives a sensible route, but no timing, meals, tickets or evening "
                  "suggestions; a traveller would need more."),
)


def _variant(name: str, kind: str, description: str, fields, label_field: str, demos):
    return JudgePrompt(name, kind, description, tuple(fields), label_field, tuple(demos))


def _drop_preceding(demos) -> tuple[Demonstration, ...]:
    return tuple(Demonstration({k: v for k, v in d.fields.items() if k != "preceding_sentences"},
                               d.answer, d.explanation) for d in demos)


def _with_preceding(demo: Demonstration, preceding: str = _PRECEDING_NONE) -> Demonstration:
    return Demonstration({"preceding_sentences": preceding, **demo.fields}, demo.answer,
                         demo.explanation)


_RELEVANCE_FIELDS = (("Instruction", "instruction"), ("Evidence", "evidence"))
_RELEVANCE_FIELDS_PRECEDING = (("Instruction", "instruction"),
                               ("Preceding sentences", "preceding_sentences"),
                               ("Evidence", "evidence"))

#: Every prompt design, by name.
PROMPTS: dict[str, JudgePrompt] = {p.name: p for p in (
    _variant("retrieval", "retrieval", _RETRIEVAL_DESCRIPTION, [("Instruction", "instruction")],
             "Need retrieval?", _RETRIEVAL_DEMOS),
    _variant("multi_retrieval", "multi_retrieval", _MULTI_RETRIEVAL_DESCRIPTION, _SENTENCE_FIELDS,
             "Rating", _MULTI_RETRIEVAL_DEMOS),
    _variant("multi_retrieval_no_preceding", "multi_retrieval", _MULTI_RETRIEVAL_DESCRIPTION,
             _SENTENCE_FIELDS_NO_PRECEDING, "Rating", _drop_preceding(_MULTI_RETRIEVAL_DEMOS)),
    _variant("multi_retrieval_three_way", "multi_retrieval_three_way", _THREE_WAY_DESCRIPTION,
             _SENTENCE_FIELDS, "Rating", _THREE_WAY_DEMOS),
    _variant("multi_retrieval_three_way_no_preceding", "multi_retrieval_three_way",
             _THREE_WAY_DESCRIPTION, _SENTENCE_FIELDS_NO_PRECEDING, "Rating",
             _drop_preceding(_THREE_WAY_DEMOS)),
    _variant("relevance", "relevance", _RELEVANCE_DESCRIPTION, _RELEVANCE_FIELDS, "Rating",
             (_MOON, _PRESIDENT)),
    _variant("relevance_multi", "relevance", _RELEVANCE_DESCRIPTION, _RELEVANCE_FIELDS_PRECEDING,
             "Rating", (_with_preceding(_MOON), _SCIENTIST)),
    _variant("relevance_multi_no_preceding", "relevance", _RELEVANCE_DESCRIPTION,
             _RELEVANCE_FIELDS, "Rating", (_MOON, _PRESIDENT)),
    _variant("groundness_multi", "groundness", _GROUND_MULTI_DESCRIPTION, _GROUND_FIELDS, "Score",
             _GROUND_MULTI_DEMOS),
    _variant("groundness_multi_no_preceding", "groundness", _GROUND_MULTI_DESCRIPTION,
             _GROUND_FIELDS_NO_PRECEDING, "Score", _drop_preceding(_GROUND_MULTI_DEMOS)),
    _variant("groundness_context", "groundness_scale", _GROUND_SCALE_DESCRIPTION,
             [("Instruction", "instruction"), ("Evidence", "evidence"), ("Output", "output")],
             "Score", [_GROUND_SCALE_DEMO]),
    _variant("utility", "utility", _UTILITY_DESCRIPTION,
             [("Instruction", "instruction"), ("Output", "output")], "Perceived utility",
             _UTILITY_DEMOS),
)}
