"""Baselines and evaluation tooling: the original's baseline script (``run_baseline_lm.py``),
RAG-Sequence and RAG-Token (Lewis et al. 2020), the adaptive-retrieval threshold sweep (paper
Fig. 3) and the result tables (paper Table 2)."""
