"""``from passage_retriever import Retriever``, as the original README's quick start imports it
(from ``retrieval_lm/``); the class is :class:`selfrag.retrieval.retriever.Retriever`::

    retriever = Retriever({})
    retriever.setup_retriever_demo("facebook/contriever-msmarco", "passages.jsonl",
                                   "embeddings/*", n_docs=5, save_or_load_index=False)
    retriever.search_document_demo("What is overfitting?", 5)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selfrag.retrieval.retriever import Retriever  # noqa: E402

__all__ = ["Retriever"]
