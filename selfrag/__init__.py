"""Self-RAG: retrieval on demand and self-critique with reflection tokens."""

__version__ = "0.1.0"
