"""Every entry point against the bad-input corpus in ``tests/bad_inputs/`` (issue 12).

Each case is a file a user could pass (bytes that are not UTF-8, a JSON array in a ``.jsonl``,
an empty file, ...). Every entry point that reads such a file must answer it the same way: exit
status 2, one ``error:`` line naming the file (and the line where there is one), no traceback,
nothing written, no model loaded (the model names below do not exist). A new entry point is
added to ``ENTRY_POINTS`` and gets every case for free; a new case is a file and a row in
``CASES``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from selfrag.cli import run_main

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "bad_inputs"
NO_MODEL = "no-such-model-is-ever-loaded"

#: file of the corpus -> what the error line must say (any of these), after naming the file.
CASES = {
    "not_utf8.jsonl": ["line 2: not UTF-8 text (byte 0xe9 at column 18)"],
    "json_array.jsonl": ["line 1: found a JSON array, but a JSONL input holds one JSON object"],
    "empty.jsonl": ["no records (the input is empty)", "(the inputs are empty)"],
    "malformed.jsonl": ["line 2: malformed JSON"],
    "not_object.jsonl": ["line 2: each record must be a JSON object, not a list"],
    "jsonl_in.json": ["line 2: a .json input must hold one JSON list of records",
                      "line 2: not a run_short_form output (one JSON object expected"],
    "missing.jsonl": ["not found"],  # not in the corpus: a path that does not exist
}

#: (script, arguments with {input} and {out}, the input formats it takes)
ENTRY_POINTS = [
    ("retrieval_lm/run_short_form.py",
     "--model_name {model} --input_file {input} --output_file {out} --mode no_retrieval", "both"),
    ("retrieval_lm/run_long_form_static.py",
     ("--model_name {model} --input_file {input} --output_file {out} --task asqa "
     "--mode no_retrieval"), "both"),
    ("retrieval_lm/run_baseline_lm.py",
     "--model_name {model} --input_file {input} --result_fp {out}", "both"),
    ("scripts/threshold_sweep.py",
     "--model_name {model} --input_file {input} --output_csv {out}", "both"),
    ("retrieval_lm/passage_retrieval.py",
     "--data {input} --output_dir {out} --passages none.jsonl --passages_embeddings none/*",
     "both"),
    ("retrieval_lm/generate_passage_embeddings.py",
     "--passages {input} --output_dir {out} --model_name_or_path {model}", "jsonl"),
    ("retrieval_lm/finetune.py",
     "--model_name_or_path {model} --train_file {input} --output_dir {out}", "both"),
    ("data_creation/train_special_tokens.py",
     "--model_name_or_path {model} --data_path {input} --output_dir {out}", "both"),
    ("data_creation/critic/gpt4_reward/chatgpt_relevance.py",
     ("--input_files {input} --output_file_name {out} --model_name judge "
     "--base_url http://127.0.0.1:9/v1"), "both"),
    ("data_creation/critic/gpt4_reward/combine_chat_gpt_reward.py",
     "--rel_file {input} --output_file_name {out}", "both"),
    ("data_creation/generator/create_retrieval_data.py",
     "--input_files {input} --output_file {out}", "both"),
    ("data_creation/generator/create_prompt_data.py",
     "--input_file {input} --output_dir {out}", "both"),
    ("data_creation/generator/run_reward_vllm.py",
     "--input_file {input} --model_name {model} --task retrieval --result_fp {out}", "both"),
    ("data_creation/generator/run_pipeline.py",
     "--input_file {input} --work_dir {out} --judge gold", "both"),
    ("scripts/result_table.py", "--run method popqa {input} --output {out}", "both"),
]


def _load(script: str):
    folder = str((ROOT / script).parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # the generator scripts import a sibling helper
    name = f"_corpus_{Path(script).stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / script)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while it loads
        spec.loader.exec_module(module)
    return sys.modules[name]


def _params():
    for script, argv, formats in ENTRY_POINTS:
        for case in CASES:
            if formats == "jsonl" and not case.endswith(".jsonl"):
                continue
            yield pytest.param(script, argv, case, id=f"{Path(script).stem}-{case}")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-used")
    monkeypatch.chdir(tmp_path)
    yield
    try:  # training entry points use accelerate's process-wide state
        from accelerate.state import AcceleratorState, GradientState, PartialState

        AcceleratorState._reset_state(True)
        GradientState._reset_state()
        PartialState._reset_state()
    except ImportError:
        pass


def test_the_corpus_holds_every_case():
    assert sorted(p.name for p in CORPUS.iterdir()) == sorted(c for c in CASES
                                                              if c != "missing.jsonl")


@pytest.mark.parametrize("script, argv, case", list(_params()))
def test_every_entry_point_answers_a_bad_input_with_one_located_error(tmp_path, capsys, script,
                                                                      argv, case):
    source = CORPUS / case
    out = tmp_path / "out" / "result.json"
    args = argv.format(model=NO_MODEL, input=source, out=out).split()
    code = run_main(_load(script).main, args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: {source}"), last
    assert any(expected in last for expected in CASES[case]), last
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))
