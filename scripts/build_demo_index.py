"""Build the offline demo retrieval index (counterpart of the original download_demo_corpus.sh).

Embeds ``eval_data/corpus/corpus.jsonl`` (9,340 passages) with the offline default encoder and
saves embeddings plus an exact faiss index in ``$SELFRAG_CACHE/demo_index/`` (default
``~/.cache/selfrag``). Runs once (minutes on a laptop CPU); later runs return at once; an
interrupted run resumes. Then try a query::

    python scripts/build_demo_index.py --query "What is Henry Feilden's occupation?"
"""

from __future__ import annotations

import argparse
import sys

from selfrag.cli import entry_point
from selfrag.retrieval.demo import DEMO_CORPUS, build_demo_index, load_demo_retriever
from selfrag.retrieval.encoder import DEFAULT_ENCODER


@entry_point
def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", default=str(DEMO_CORPUS), help="passage file (JSONL or DPR TSV)")
    p.add_argument("--model_name_or_path", default=DEFAULT_ENCODER, help="passage/query encoder")
    p.add_argument("--cache_dir", default=None,
                   help="parent folder of the index (default $SELFRAG_CACHE/demo_index)")
    p.add_argument("--query", default=None, help="after building, print the top passages for it")
    p.add_argument("--n_docs", type=int, default=5, help="passages printed for --query")
    args = p.parse_args(argv)
    folder = build_demo_index(args.corpus, args.model_name_or_path, args.cache_dir)
    print(f"demo index ready in {folder}")
    if args.query:
        retriever = load_demo_retriever(args.corpus, args.model_name_or_path, args.cache_dir)
        for doc in retriever.search_batch([args.query], args.n_docs)[0]:
            print(f"{doc['score']:.3f}  [{doc['id']}] {doc['title']}: {doc['text'][:120]}")


if __name__ == "__main__":
    sys.exit(main())
