"""The embed stage: sequences -> frozen backbone -> embedding store.

The only package that imports :mod:`embedhead.backbone` (``tests/test_architecture.py`` checks
this). Modules: :mod:`.plan` (unique sequences -> length-sorted batches), :mod:`.distributed`
(torchrun rank/world), :mod:`.run` (``embed_dataset``, ``embed_sequences``, ``store_attrs``).
"""
