"""An OpenAI-compatible HTTP server for any model the project loads (``selfrag serve``).

``/v1/completions`` and ``/v1/chat/completions`` (with log-probabilities), ``/v1/models`` and
``/health``. Requests that arrive together are generated in one batch (:mod:`.batcher`), so
concurrent clients share the model's forward passes. Use it to label critic data with a
self-hosted judge, or to put a trained critic or Self-RAG generator behind the OpenAI API.
"""

from selfrag.serve.app import create_app

__all__ = ["create_app"]
