r"""Training throughput: original-style padded batches vs length-grouped vs packed batches.

Every mode trains the same model from the same initial weights on the same examples for the same
number of epochs (hence the same target tokens), through the library's training loop, then the
final model's loss is measured on all examples the same way. Prints tokens/s (real tokens, not
padding) and the final loss of each mode.

CPU example (tiny random Llama, the released 50-example sample; a few minutes on 2 cores):
    python scripts/bench_training.py --model tiny-random-llama \
        --train_file eval_data/selfrag_train_sample50.jsonl --max_seq_length 512
"""

from __future__ import annotations

import argparse
import logging
import math
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
    return p.parse_args()


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
    from selfrag.training.model_setup import prepare_tokens
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
    print(f"initial loss {dataset_loss(template, dataset):.4f}")
    engine = AccelerateEngine()
    results = {}
    for mode in args.modes.split(","):
        model = load_model(args.model)
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        model.load_state_dict(initial)
        # Packed rows hold batch_size x mean length tokens: about the real tokens of one padded
        # batch, so every mode takes a similar number of optimizer steps.
        row_len = math.ceil(mean_len) if mode == "packed" else args.max_seq_length
        with tempfile.TemporaryDirectory() as out:
            config = TrainConfig(output_dir=out, per_device_train_batch_size=args.batch_size,
                                 max_seq_length=row_len, learning_rate=args.learning_rate,
                                 num_train_epochs=args.epochs, lr_scheduler_type="constant",
                                 batching=mode, seed=args.seed)
            summary = train(engine, model, tokenizer, dataset, config)
        loss = dataset_loss(model, dataset)
        results[mode] = (summary, loss)
        print(f"{mode:>15}: {summary['global_step']:4d} steps, {summary['tokens']:7d} tokens, "
              f"{summary['target_tokens']:6d} target tokens, {summary['seconds']:7.1f} s, "
              f"{summary['tokens'] / summary['seconds']:8.0f} tokens/s, final loss {loss:.4f}")
    if "padded" in results:
        base = results["padded"][0]
        for mode, (summary, loss) in results.items():
            speedup = (summary["tokens"] / summary["seconds"]) / (base["tokens"] / base["seconds"])
            print(f"{mode:>15}: {speedup:.2f}x tokens/s vs padded, loss {loss:.4f} "
                  f"(padded {results['padded'][1]:.4f})")


if __name__ == "__main__":
    main()
