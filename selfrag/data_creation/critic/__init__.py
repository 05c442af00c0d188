"""Critic training data: the pipeline of the original ``data_creation/critic/`` (paper §3.2.1:
GPT-4 labels each reflection-token type, then the critic is trained on those labels).

Words: the *judge* is whatever answers a label question (GPT-4 in the paper, any OpenAI-compatible
model here; in :mod:`selfrag.data_creation.generator`, also the gold-answer rules or the trained
critic). A *labeller* is one of the four ``chatgpt_<labeller>.py`` commands, one per token type:
``need_retrieval`` (Retrieve), ``relevance`` (IsRel), ``groundness`` (IsSup), ``utility`` (IsUse).

- :mod:`.labels`: the label kinds, and reading a label out of a judge's or the critic's reply.
- :mod:`.judge_prompts`: the prompts that ask the judge for a label.
- :mod:`.judge_items`: the items sent to the judge (reading, filling in, choosing a prompt).
- :mod:`.judge_cache`: the judge's replies, cached one by one as they arrive; their cost.
- :mod:`.judge_run`: the engine of the ``chatgpt_*.py`` commands (ask, cache, write records).
- :mod:`.templates`: what the critic model reads: its instructions and input templates.
- :mod:`.sft_instances`: the critic's SFT instances from the labels
  (``combine_chat_gpt_reward.py``).
"""
