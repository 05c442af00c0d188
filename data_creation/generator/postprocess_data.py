r"""Final assembly of the generator training data (the original ``postprocess_data.py``).

Flags are the original's, spelling included (``--groudness_pred``); every file flag takes one or
more files. Default: the paper's passage choice (Relevant + Fully supported, ties by retrieval
score; then Partially supported; then a seeded random pick), the original's bugs fixed, and
unreadable critic predictions counted and reported, never turned into labels. ``--faithful``:
the original's sampling rules and label fallbacks (seeded too).

    python data_creation/generator/postprocess_data.py --orig_input_data items.jsonl \
        --retrieval_i_only ret.json --utility_pred ut.json --splitted_input_data sent.jsonl_splitted \
        --retrieval_multi multi.json --relevance_pred rel.json --groudness_pred sup.json \
        --output_fn out/generator_data --seed 0

Writes ``<output_fn>.json``, ``<output_fn>.jsonl`` and ``<output_fn>.summary.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

import _path  # noqa: F401

from selfrag.cli import entry_point
from selfrag.data_creation.generator.assembly import Assembler, AssemblyInputs
from selfrag.data_creation.generator.prompt_data import sentence_key
from selfrag.data_creation.generator.records import item_key, load_checked, load_items
from selfrag.data_creation.generator.validate import validate_instance
from selfrag.io import check_output, read_records, write_json_atomic, write_jsonl_atomic

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    files = {"nargs": "+", "type": str}
    p.add_argument("--utility_pred", required=True, help="IsUse critic results", **files)
    p.add_argument("--retrieval_i_only", required=True,
                   help="input-only Retrieve critic results", **files)
    p.add_argument("--retrieval_multi", default=[], help="multi-sentence Retrieve results",
                   **files)
    p.add_argument("--groudness_pred", default=[], help="IsSup critic results (sic)", **files)
    p.add_argument("--relevance_pred", default=[], help="IsRel critic results", **files)
    p.add_argument("--orig_input_data", required=True, help="the input items", **files)
    p.add_argument("--retrieval_data", default=[],
                   help="sentence instances with ctxs (optional: pairs carry their passages)",
                   **files)
    p.add_argument("--splitted_input_data", default=[], help="the _splitted files", **files)
    p.add_argument("--output_fn", type=str, required=True, help="output path without suffix")
    p.add_argument("--prev_result_fp", default=[], help="earlier results put in front", **files)
    p.add_argument("--negative_samples", default=[],
                   help="accepted for compatibility; not used (its role is undocumented)", **files)
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    p.add_argument("--faithful", action="store_true", help="the original's sampling rules")
    return p


@entry_point
def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.negative_samples:
        logger.warning("--negative_samples is accepted but not used")
    items = [item for path in args.orig_input_data for item in load_items(path)]
    for suffix in (".json", ".jsonl"):
        check_output(args.output_fn + suffix, "--output_fn")
    initial = load_checked(args.retrieval_i_only, ["pred"])
    inputs = AssemblyInputs(
        items=items,
        initial={item_key(r): r for r in initial},
        utility={item_key(r): r for r in load_checked(args.utility_pred, ["pred"])},
        splitted={r["q_id"]: r for r in load_checked(args.splitted_input_data,
                                                     ["q_id", "splitted_output", "skipped"])},
        multi={sentence_key(r): r for r in load_checked(args.retrieval_multi,
                                                        ["q_id", "sent_idx", "pred"])},
        relevance=load_checked(args.relevance_pred, ["q_id", "sent_idx", "p_idx", "pred", "text"]),
        groundness=load_checked(args.groudness_pred, ["q_id", "sent_idx", "p_idx", "pred"]))
    judge = next((str(r["judge"]) for r in initial if r.get("judge")), "critic")
    assembler = Assembler(inputs, faithful=args.faithful, seed=args.seed, judge=judge)
    records = [r for path in args.prev_result_fp
               for _, r in read_records(path, allow_empty=True)]
    records += assembler.run()
    write_json_atomic(args.output_fn + ".json", records, indent=1)
    write_jsonl_atomic(args.output_fn + ".jsonl", records)
    summary = {"judge": judge, "mode": "faithful" if args.faithful else "paper", "seed": args.seed,
               "items": len(items), "invalid_outputs": sum(bool(validate_instance(r))
                                                           for r in records),
               **assembler.report.as_dict()}
    write_json_atomic(args.output_fn + ".summary.json", summary, indent=1)
    print(json.dumps({k: summary[k] for k in ("judge", "mode", "items", "kept", "dropped",
                                              "unparseable_predictions")}))


if __name__ == "__main__":
    sys.exit(main())
