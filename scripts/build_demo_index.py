"""Build the offline demo retrieval index (counterpart of the original download_demo_corpus.sh).

Builds an exact faiss index of ``eval_data/corpus/corpus.jsonl`` (9,340 passages) under the
offline default encoder in ``$SELFRAG_CACHE/demo_index/`` (default ``~/.cache/selfrag``), from the
embeddings shipped beside the corpus when they match it and the encoder (seconds), else by
embedding the corpus (minutes on a laptop CPU; an interrupted run resumes). Later runs return at
once. Then try a query::

    python scripts/build_demo_index.py --query "What is Henry Feilden's occupation?"

After changing the corpus or the encoder, ``--ship`` embeds the corpus and rewrites the shipped
``eval_data/corpus/corpus.<encoder>.npy`` and its ``.json`` record.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selfrag.cli import entry_point
from selfrag.retrieval.demo_index import (
    DEMO_CORPUS,
    build_demo_index,
    load_demo_retriever,
    ship_vectors,
)
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
    p.add_argument("--ship", action="store_true",
                   help="embed the corpus and (re)write the embeddings shipped beside it")
    args = p.parse_args(argv)
    if args.ship:
        print(f"shipped embeddings written: "
              f"{ship_vectors(args.corpus, args.model_name_or_path, args.cache_dir)}")
    folder = build_demo_index(args.corpus, args.model_name_or_path, args.cache_dir)
    print(f"demo index ready in {folder}")
    if args.query:
        retriever = load_demo_retriever(args.corpus, args.model_name_or_path, args.cache_dir)
        for doc in retriever.search_batch([args.query], args.n_docs)[0]:
            print(f"{doc['score']:.3f}  [{doc['id']}] {doc['title']}: {doc['text'][:120]}")


if __name__ == "__main__":
    sys.exit(main())
