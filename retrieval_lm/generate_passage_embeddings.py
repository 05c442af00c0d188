r"""Embed a passage corpus, one shard per run like the original script, as ``.npy`` + ``.json``
(no pickle).

CPU-sized example (the bundled demo corpus and the offline default encoder)::

    python retrieval_lm/generate_passage_embeddings.py --passages eval_data/corpus/corpus.jsonl \
        --output_dir demo_embeddings --per_gpu_batch_size 64

Full Wikipedia as in the original README (4 GPUs, one shard each)::

    for i in 0 1 2 3; do CUDA_VISIBLE_DEVICES=$i python retrieval_lm/generate_passage_embeddings.py \
        --model_name_or_path facebook/contriever-msmarco --passages psgs_w100.tsv \
        --output_dir wikipedia_embeddings --shard_id $i --num_shards 4 & done

A finished shard is skipped; an interrupted one resumes from its last saved block.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selfrag.cli import entry_point
from selfrag.io import check_output
from selfrag.retrieval.embeddings import check_shard, generate_shard
from selfrag.retrieval.encoder import DEFAULT_ENCODER, Encoder
from selfrag.retrieval.passages import load_passages


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--passages", required=True,
                   help="passage file: DPR TSV (id, text, title) or JSONL (id, title, text)")
    p.add_argument("--output_dir", default="wikipedia_embeddings",
                   help="folder of the embedding shards")
    p.add_argument("--prefix", default="passages", help="shard file prefix: {prefix}_{shard:02d}")
    p.add_argument("--shard_id", type=int, default=0, help="which shard to embed (0-based)")
    p.add_argument("--num_shards", type=int, default=1, help="how many shards split the corpus")
    p.add_argument("--per_gpu_batch_size", type=int, default=512,
                   help="passages per encoder forward pass")
    p.add_argument("--passage_maxlength", type=int, default=512,
                   help="truncate passages to this many tokens")
    p.add_argument("--model_name_or_path", default=DEFAULT_ENCODER,
                   help="encoder: HF id or folder (e.g. facebook/contriever-msmarco); default: "
                        f"the offline {DEFAULT_ENCODER}")
    p.add_argument("--no_fp16", action="store_true", help="keep the encoder in fp32 on GPU")
    p.add_argument("--no_title", action="store_true", help="embed the text without its title")
    p.add_argument("--lowercase", action="store_true", help="lowercase passages before encoding")
    p.add_argument("--normalize_text", action="store_true",
                   help="apply the original's unicode normalisation (its src/normalize_text.py)")
    p.add_argument("--checkpoint_every", type=int, default=50_000,
                   help="save progress every this many passages (resume granularity)")
    return p.parse_args(argv)


@entry_point
def main(argv=None) -> None:
    args = parse_args(argv)
    passages = load_passages(args.passages)
    check_shard(len(passages), args.shard_id, args.num_shards)  # before the encoder loads
    check_output(args.output_dir, "--output_dir", folder=True)
    encoder = Encoder.load(args.model_name_or_path, fp16=not args.no_fp16)
    path = generate_shard(
        passages, encoder, args.output_dir, prefix=args.prefix, shard_id=args.shard_id,
        num_shards=args.num_shards, batch_size=args.per_gpu_batch_size,
        max_length=args.passage_maxlength, use_title=not args.no_title,
        lowercase=args.lowercase, normalize=args.normalize_text,
        checkpoint_every=args.checkpoint_every, source=args.passages)
    print(f"embeddings written to {path}")


if __name__ == "__main__":
    sys.exit(main())
