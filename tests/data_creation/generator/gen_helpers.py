"""Helpers for the generator-data tests: a scripted critic, reading released outputs."""

from __future__ import annotations

import re
from pathlib import Path

from selfrag.lm.scripted import ScriptedLM, Step

REPO = Path(__file__).resolve().parents[3]
RELEASED = REPO / "eval_data" / "selfrag_train_sample50.jsonl"
CORPUS = REPO / "eval_data" / "corpus" / "corpus.jsonl"
POPQA = REPO / "eval_data" / "popqa_longtail_w_gs.head100.jsonl"
_TOKEN_OR_PARAGRAPH = re.compile(r"<paragraph>.*?</paragraph>|\[[^\[\]]*\]", re.DOTALL)


def critic_task(prompt: str) -> str:
    """Which critic task a prompt is for, read from its instruction."""
    if "perceived utility" in prompt:
        return "utility"
    if "Respond with either" in prompt:
        return "retrieval"
    if "next output sentence" in prompt:
        return "multi_retrieval"
    if "evidence is relevant" in prompt:
        return "relevance"
    return "groundness"


def scripted_critic(answers: dict) -> ScriptedLM:
    """A critic replying ``answers[task]`` (a string, or a function of the prompt)."""

    def script(prompt: str):
        reply = answers[critic_task(prompt)]
        reply = reply(prompt) if callable(reply) else reply
        return [Step({reply: 1.0}), Step({"</s>": 1.0})]

    return ScriptedLM(script)


def strip_reflection(output: str) -> str:
    """A released output with its reflection tokens and paragraphs removed."""
    return _TOKEN_OR_PARAGRAPH.sub("", output)
