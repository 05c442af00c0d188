"""Dense retrieval: a Contriever-compatible encoder, passage embeddings, a faiss index, a Retriever.

Modules, one concern each:

- :mod:`~selfrag.retrieval.normalize`: the text normalisation of spec §8.7.
- :mod:`~selfrag.retrieval.passages`: DPR TSV / JSONL passage corpora (spec §8.2).
- :mod:`~selfrag.retrieval.encoder`: HF ``AutoModel`` + mean (or CLS) pooling (spec §8.1).
- :mod:`~selfrag.retrieval.embeddings`: sharded, resumable passage embeddings as ``.npy`` + ids.
- :mod:`~selfrag.retrieval.index`: faiss indexes from ``index_factory`` strings, saved with ids and
  metadata that is checked at load.
- :mod:`~selfrag.retrieval.retriever`: the ``Retriever`` class of spec §8.5 plus ``search_batch``.
- :mod:`~selfrag.retrieval.batch`: add ``ctxs`` to every item of a JSON/JSONL file (spec §8.6).
- :mod:`~selfrag.retrieval.demo`: the offline demo index over the bundled corpus.
"""
