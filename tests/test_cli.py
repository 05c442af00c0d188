"""The entry points' configs are built from their flags in one place (selfrag.cli)."""

import run_long_form_static
import run_short_form

from selfrag import cli
from selfrag.inference.long_form_types import LongFormConfig
from selfrag.inference.scoring import CritiqueWeights
from selfrag.inference.short_form import ShortFormConfig

COMMON = ["--model_name", "m", "--input_file", "in.jsonl", "--output_file", "out.json",
          "--threshold", "0.3", "--max_new_tokens", "7", "--use_groundness", "--w_use", "0.5",
          "--mode", "default", "--ndocs", "4", "--faithful"]
WEIGHTS = CritiqueWeights(1.0, 1.0, 0.5, use_support=True, use_utility=False, use_seqscore=False)


def test_short_form_config_of_the_flags():
    args = run_short_form.build_parser().parse_args([*COMMON, "--task", "pubhealth"])
    assert cli.short_form_config(args) == ShortFormConfig(
        mode="adaptive_retrieval", threshold=0.3, max_new_tokens=7, weights=WEIGHTS, task="fever",
        faithful=True)


def test_long_form_config_of_the_flags_holds_the_one_ndocs():
    args = run_long_form_static.build_parser().parse_args(
        [*COMMON, "--task", "asqa", "--beam_width", "3", "--max_depth", "5", "--ignore_cont"])
    assert cli.long_form_config(args) == LongFormConfig(
        mode="adaptive_retrieval", threshold=0.3, max_new_tokens=7, beam_width=3, max_depth=5,
        ndocs=4, weights=WEIGHTS, ignore_cont=True, faithful=True)
