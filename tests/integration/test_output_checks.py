"""Every entry point checks where it will write before it loads a model or spends anything
(issue 12 item 10): an --output_file that is a folder, an --output_dir that is a file."""

import importlib.util
from pathlib import Path

import pytest

from selfrag.cli import run_main

ROOT = Path(__file__).resolve().parents[2]
POPQA = str(ROOT / "eval_data/popqa_longtail_w_gs.head100.jsonl")
ASQA = str(ROOT / "eval_data/asqa_dev.knowledge_docs.head20.json")
NO_MODEL = "no-such-model-is-ever-loaded"


def load(relative: str):
    spec = importlib.util.spec_from_file_location(Path(relative).stem, ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# (script, flag of the output, is it a folder, the other flags)
CASES = [
    ("retrieval_lm/run_short_form.py", "--output_file", False,
     ["--model_name", NO_MODEL, "--input_file", POPQA, "--ndocs", "2"]),
    ("retrieval_lm/run_long_form_static.py", "--output_file", False,
     ["--model_name", NO_MODEL, "--input_file", ASQA, "--task", "asqa", "--ndocs", "2"]),
    ("retrieval_lm/run_baseline_lm.py", "--result_fp", False,
     ["--model_name", NO_MODEL, "--input_file", POPQA]),
    ("scripts/threshold_sweep.py", "--output_csv", False,
     ["--model_name", NO_MODEL, "--input_file", POPQA, "--ndocs", "2"]),
    ("retrieval_lm/passage_retrieval.py", "--output_dir", True,
     ["--data", POPQA, "--passages", "none.jsonl", "--passages_embeddings", "none/*"]),
    ("retrieval_lm/generate_passage_embeddings.py", "--output_dir", True,
     ["--passages", str(ROOT / "eval_data/corpus/corpus.jsonl"), "--model_name_or_path",
      NO_MODEL]),
]


@pytest.mark.parametrize("script, flag, folder, argv", CASES, ids=[c[0] for c in CASES])
def test_an_unwritable_output_fails_before_any_model_loads(tmp_path, capsys, script, flag,
                                                           folder, argv):
    out = tmp_path / "out"
    if folder:
        out.write_text("a file where a folder should be")
    else:
        out.mkdir()
    main = load(script).main
    code = run_main(main, [*argv, flag, str(out)])
    assert code == 2
    problem = "is a file, not a folder" if folder else "is a folder, not a file"
    assert capsys.readouterr().err == f"error: {flag} {out}: {problem}\n"
