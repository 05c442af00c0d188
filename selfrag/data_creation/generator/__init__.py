"""Generator training data: the pipeline of the original ``data_creation/generator/``, one
concern per module.

- :mod:`.records`: reading and checking the input items and intermediate files.
- :mod:`.sentences`: spaCy sentence splitting that keeps the text's own whitespace.
- :mod:`.judges`: what labels a step — the critic LM (:mod:`.critic_runs`) or gold answers
  (:mod:`.gold_judge`) — behind one interface.
- :mod:`.retrieval_data`: retrieval queries (step 3) and sentence-level instances (step 5).
- :mod:`.prompt_data`: (sentence x passage) pairs for IsRel / IsSup (step 8).
- :mod:`.predictions`: critic predictions read as reflection tokens (ours and the original's rules).
- :mod:`.selection`: which passage a retrieving sentence gets (paper rule, original rule).
- :mod:`.assembly`: the final training instances (step 11).
- :mod:`.validate`: a grammar check of the released output format.
- :mod:`.pipeline`: every step in order, resumable, in one work folder.
"""
