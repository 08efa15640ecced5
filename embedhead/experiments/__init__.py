"""Experiments on cached embeddings and on raw sequences.

Modules: :mod:`.sweep` (hyperparameter search over heads), :mod:`.experiment` (a spec file of
datasets x heads x repeats -> tables), :mod:`.baselines` (length / GC / k-mer models, no
embeddings), :mod:`.kmers` (k-mer count features).
"""
