"""The shipped default ``selfrag-smollm2-135m``: its adapter moves the base model's
reflection-token probabilities the way training meant them to. Slow: ~1 min (builds both models
once into $SELFRAG_CACHE)."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _first_token_distribution(model: str, prompts: list[str], tokens: tuple[str, str]) -> list[float]:
    """``p(tokens[0]) / (p(tokens[0]) + p(tokens[1]))`` at the first generated position."""
    from selfrag.inference.scoring import group_distribution
    from selfrag.lm import GenerationRequest, load_lm
    from selfrag.tokens import reflection_token_ids

    lm = load_lm("hf", model, device="cpu", batch_size=8)
    request = GenerationRequest(1, control_ids=tuple(reflection_token_ids(lm.tokenizer).all_ids))
    rows = [g.control_logprobs[0] for g in lm.generate(prompts, request)]
    return [float(group_distribution(row, (tokens[1], tokens[0]))[1]) for row in rows]


def _popqa(n: int) -> list[dict]:
    lines = (ROOT / "eval_data/popqa_longtail_w_gs.head100.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines[:n]]


@pytest.fixture(scope="module")
def models():
    from selfrag.models import BASE_MODEL, SELFRAG_MODEL, resolve_model

    return resolve_model(BASE_MODEL), resolve_model(SELFRAG_MODEL)


def test_trained_model_retrieves_for_knowledge_questions_not_for_arithmetic(models):
    from selfrag.prompts import format_prompt
    from selfrag.reproduce.instructions import probe_instructions
    from selfrag.tokens import NO_RETRIEVAL, RETRIEVAL

    questions = [format_prompt(r["question"]) for r in _popqa(6)]
    probes = [format_prompt(p["instruction"]) for p in probe_instructions(6)]
    base, trained = (_first_token_distribution(m, questions + probes, (RETRIEVAL, NO_RETRIEVAL))
                     for m in models)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    # Trained: knowledge questions far more likely to retrieve than instructions needing none...
    assert mean(trained[:6]) > mean(trained[6:]) + 0.3, trained
    assert min(trained[:6]) > max(trained[6:]), trained
    # ...which the untrained base does not separate like that.
    assert mean(trained[:6]) - mean(trained[6:]) > mean(base[:6]) - mean(base[6:]) + 0.3, base


def test_trained_model_tells_relevant_from_irrelevant_passages(models):
    from selfrag.prompts import format_prompt, passage_text
    from selfrag.tokens import IRRELEVANT, PARAGRAPH_CLOSE, PARAGRAPH_OPEN, RELEVANT, RETRIEVAL

    prompts = []
    for item in _popqa(8):
        relevant = [c for c in item["ctxs"] if any(a in c["text"] for a in item["answers"])]
        other = _popqa(40)[-1]["ctxs"][0]  # a passage about another question's subject
        if relevant:
            for ctx in (relevant[0], other):
                prompts.append(format_prompt(item["question"]) + RETRIEVAL + PARAGRAPH_OPEN
                               + passage_text(ctx) + PARAGRAPH_CLOSE)
    assert len(prompts) >= 8
    base, trained = (_first_token_distribution(m, prompts, (RELEVANT, IRRELEVANT)) for m in models)
    pairs = list(zip(trained[0::2], trained[1::2]))
    # For most questions the answer-bearing passage is judged more relevant than a passage about
    # something else, by a clear margin on average; the base model makes no such distinction.
    assert sum(r > i for r, i in pairs) >= 0.75 * len(pairs), pairs
    margin = sum(r - i for r, i in pairs) / len(pairs)
    base_margin = sum(r - i for r, i in zip(base[0::2], base[1::2])) / len(pairs)
    assert margin > 0.2 and margin > base_margin + 0.1, (pairs, base_margin)
