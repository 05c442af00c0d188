"""Dense retrieval: a Contriever-compatible encoder, passage embeddings, a faiss index, a Retriever.

Modules, one concern each:

- :mod:`~selfrag.retrieval.normalize`: the original's ``src/normalize_text.normalize``.
- :mod:`~selfrag.retrieval.passages`: DPR TSV / JSONL passage corpora (as ``src/data.py``).
- :mod:`~selfrag.retrieval.encoder`: HF ``AutoModel`` + mean (or CLS) pooling, as the original.
- :mod:`~selfrag.retrieval.embeddings`: sharded, resumable passage embeddings as ``.npy`` + ids.
- :mod:`~selfrag.retrieval.index`: faiss indexes from ``index_factory`` strings, saved with ids and
  metadata that is checked at load.
- :mod:`~selfrag.retrieval.disk_vectors`: passage vectors on disk (int8 or fp16, memory-mapped)
  that re-rank a ``DiskRefine`` index's candidates exactly.
- :mod:`~selfrag.retrieval.disk_build`: building a ``DiskRefine`` index in bounded memory,
  resumably.
- :mod:`~selfrag.retrieval.retriever`: the original's ``Retriever`` class plus ``search_batch``.
- :mod:`~selfrag.retrieval.file_retrieval`: add ``ctxs`` to every item of a JSON/JSONL file (issue #65).
- :mod:`~selfrag.retrieval.demo_index`: the offline demo index over the bundled corpus.
"""
