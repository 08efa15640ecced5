"""The prepare stage: alignment blocks -> a pair dataset folder (see :mod:`embedhead.dataset`).

Modules: :mod:`.build` (the stage: read, chunk, negatives, split, write), :mod:`.chunking`
(blocks -> aligned windows, re-scored), :mod:`.negatives` (non-aligning pairs), :mod:`.splits`
(grouped train/val/test), :mod:`.simulate` (synthetic UCSC-style MAF for demos and tests).
"""
