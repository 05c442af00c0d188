"""What labels the pipeline's critic steps: the interface both judges implement.

- :class:`~selfrag.data_creation.generator.critic_runs.CriticJudge`: a critic LM (``--judge
  critic``); records carry the model name in ``judge``.
- :class:`~selfrag.data_creation.generator.gold_judge.GoldJudge`: gold answers (``--judge gold``);
  records carry ``"judge": "gold-answer"``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Protocol


class Judge(Protocol):
    """Labels items for one critic task (``retrieval``, ``utility``, ``multi_retrieval``,
    ``multi_retrieval_three_way``, ``relevance``, ``groudness``)."""

    name: str

    def fingerprint(self) -> dict:
        """Settings that change the labels (part of each step's resume fingerprint)."""
        ...

    def label(self, task_name: str, items: Sequence[Mapping], *, source: str = "<items>",
              journal_path: str | os.PathLike | None = None) -> list[dict]:
        """``items`` with ``pred``, ``label`` (a token or ``None``), ``problem`` and ``judge``."""
        ...
