r"""Training throughput: original-style padded batches vs length-grouped vs packed batches.

Every mode trains the same model from the same initial weights on the same examples for the same
number of epochs (hence the same target tokens), through the library's training loop, then the
final model's loss is measured on all examples the same way. Prints tokens/s (real tokens, not
padding) and the final loss of each mode.

CPU example (tiny random Llama, the released 50-example sample; a few minutes on 2 cores):
    python scripts/bench_training.py --model tiny-random-llama \
        --train_file eval_data/selfrag_train_sample50.jsonl --max_seq_length 512

``--heads all,supervised`` also compares the LM head applied at every position (what
``model(**batch).loss`` does) with the head applied only where a supervised token is predicted
(the loop's default, :func:`selfrag.training.loop.supervised_loss`), in alternating rounds
(``--rounds``); e.g. critic SFT data, where 2 of ~200 tokens per example are supervised:
    python scripts/bench_training.py --model smollm2-135m --train_file critic_train.json \
        --modes packed --heads all,supervised --rounds 3 --max_steps 8 --max_seq_length 384 \
        --learning_rate 1e-4 --eval_examples 50

``--layers all,15`` compares training every decoder layer with training only the top 15 (the
critic trainer's ``--trainable_layers``, :func:`selfrag.training.model_setup.train_top_layers`).

``--attention row,example`` compares, for packed rows, transformers' block-diagonal mask over the
whole row with attention one example at a time (the loop's default,
:mod:`selfrag.training.packed_attention`); e.g. with the critic stage's rows of 4 x 384 tokens:
    python scripts/bench_training.py --model smollm2-135m --train_file critic_train.json \
        --modes packed --attention row,example --layers 15 --row_tokens 1536 --rounds 3 \
        --max_steps 6 --max_seq_length 384 --learning_rate 1e-4 --eval_examples 50
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="tiny-random-llama", help="model name, folder or offline alias")
    p.add_argument("--train_file", default="eval_data/selfrag_train_sample50.jsonl",
                   help="JSONL of {instruction, input, output}")
    p.add_argument("--max_seq_length", type=int, default=512, help="truncation length")
    p.add_argument("--batch_size", type=int, default=4, help="examples per padded batch")
    p.add_argument("--epochs", type=int, default=2, help="epochs per mode (same target tokens)")
    p.add_argument("--learning_rate", type=float, default=2e-3, help="AdamW learning rate")
    p.add_argument("--modes", default="padded,length_grouped,packed", help="comma-separated modes")
    p.add_argument("--seed", type=int, default=0, help="data-order seed")
    p.add_argument("--heads", default="supervised",
                   help="comma-separated LM-head variants: 'supervised' (the loop's default: "
                        "logits only where a supervised token is predicted) and/or 'all'")
    p.add_argument("--layers", default="all",
                   help="comma-separated trainable decoder layers: 'all' and/or a number N "
                        "(only the top N layers train)")
    p.add_argument("--attention", default="example",
                   help="comma-separated attention over packed rows: 'example' (the loop's "
                        "default: one example at a time) and/or 'row' (block-diagonal mask)")
    p.add_argument("--row_tokens", type=int, default=None,
                   help="tokens per packed row (default: batch size x mean example length)")
    p.add_argument("--rounds", type=int, default=1,
                   help="alternating rounds of every (mode, head, layers, attention); medians "
                        "and ranges reported")
    p.add_argument("--max_steps", type=int, default=None,
                   help="optimizer steps per run (default: --epochs over the data)")
    p.add_argument("--eval_examples", type=int, default=None,
                   help="final loss over the first N examples (default all)")
    return p.parse_args()


def label(mode: str, head: str, layers: str, attention: str) -> str:
    """One variant, as printed (the mode first, padded to 15 characters)."""
    return (f"{mode:>15} {head:>10} head, {layers:>3} layers"
            + (f", {attention} attention" if mode == "packed" else ""))


@torch.no_grad()
def dataset_loss(model, dataset) -> float:
    """Mean loss per target token over the whole dataset (one example at a time, no padding)."""
    model.eval()
    total, count = 0.0, 0
    for row in dataset:
        ids = torch.tensor([row["input_ids"]])
        labels = torch.tensor([row["labels"]])
        n = int((labels[:, 1:] != -100).sum())
        total += float(model(input_ids=ids, labels=labels, use_cache=False).loss) * n
        count += n
    model.train()
    return total / count


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    from selfrag.offline_models import load_model, load_tokenizer
    from selfrag.training.engines import AccelerateEngine
    from selfrag.training.loop import TrainConfig, train
    from selfrag.training.model_setup import prepare_tokens, train_top_layers
    from selfrag.training.sft_data import EncodeOptions, build_sft_dataset, load_examples

    torch.manual_seed(0)
    tokenizer = load_tokenizer(args.model)
    template = load_model(args.model)
    prepare_tokens(tokenizer, template, use_special_tokens=True)
    initial = {k: v.clone() for k, v in template.state_dict().items()}
    dataset, stats = build_sft_dataset(tokenizer, load_examples(args.train_file),
                                       EncodeOptions(max_seq_length=args.max_seq_length))
    lengths = dataset["length"]
    mean_len = sum(lengths) / len(lengths)
    print(f"data: {stats.summary()}; length mean {mean_len:.0f}, max {max(lengths)}; "
          f"torch threads {torch.get_num_threads()}")
    evaluated = dataset.select(range(min(args.eval_examples or len(dataset), len(dataset))))
    print(f"initial loss {dataset_loss(template, evaluated):.4f}")
    engine = AccelerateEngine()
    runs = {}  # (mode, head, layers, attention): [(summary, loss), ...]
    variants = [(mode, head, layers, attention) for mode in args.modes.split(",")
                for head in args.heads.split(",") for layers in args.layers.split(",")
                for attention in args.attention.split(",")
                if mode == "packed" or attention == args.attention.split(",")[0]]
    for round_ in range(args.rounds):
        for mode, head, layers, attention in variants:
            model = load_model(args.model)
            model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
            model.load_state_dict(initial)
            train_top_layers(model, None if layers == "all" else int(layers))
            # Packed rows hold batch_size x mean length tokens: about the real tokens of one
            # padded batch, so every mode takes a similar number of optimizer steps.
            row_len = math.ceil(mean_len) if mode == "packed" else args.max_seq_length
            if mode == "packed" and args.row_tokens:
                row_len = math.ceil(args.row_tokens / args.batch_size)
            config = dict(per_device_train_batch_size=args.batch_size, max_seq_length=row_len,
                          learning_rate=args.learning_rate, num_train_epochs=args.epochs,
                          max_train_steps=args.max_steps, lr_scheduler_type="constant",
                          batching=mode, seed=args.seed,
                          supervised_logits_only=head == "supervised",
                          per_example_attention=attention == "example")
            with tempfile.TemporaryDirectory() as out:
                summary = train(engine, model, tokenizer, dataset,
                                TrainConfig(output_dir=out, **config))
            loss = dataset_loss(model, evaluated)
            runs.setdefault((mode, head, layers, attention), []).append((summary, loss))
            speed = summary["tokens"] / summary["seconds"]
            print(f"round {round_ + 1} {label(mode, head, layers, attention)}: "
                  f"{summary['global_step']:4d} "
                  f"steps, {summary['tokens']:7d} tokens, {summary['target_tokens']:6d} target "
                  f"tokens, {summary['seconds']:7.1f} s, {speed:8.0f} tokens/s, "
                  f"final loss {loss:.4f}", flush=True)
    rate = {key: sorted(s["tokens"] / s["seconds"] for s, _ in results)
            for key, results in runs.items()}
    print(f"\nmedian tokens/s [range] over {args.rounds} round(s):")
    for key, rates in rate.items():
        mode = key[0]
        losses = [f"{loss:.4f}" for _, loss in runs[key]]
        line = (f"{label(*key)}: {statistics.median(rates):8.0f} "
                f"[{rates[0]:.0f}-{rates[-1]:.0f}], final losses {' '.join(losses)}")
        first = (mode, *(getattr(args, a).split(",")[0] for a in ("heads", "layers", "attention")))
        if first != key:
            ratio = statistics.median(rates) / statistics.median(rate[first])
            line += f"; {ratio:.2f}x vs {label(*first)[16:]}"
        padded = ("padded", *key[1:3], args.attention.split(",")[0])  # padded runs once
        if mode != "padded" and padded in rate:
            ratio = statistics.median(rates) / statistics.median(rate[padded])
            line += f"; {ratio:.2f}x vs padded"
        print(line)


if __name__ == "__main__":
    main()
