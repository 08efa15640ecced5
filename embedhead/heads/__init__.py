"""Light Siamese heads trained on cached embeddings (``train``, ``evaluate``, ``predict``).

Modules: :mod:`~embedhead.heads.config` (``HeadConfig``, ``TrainConfig`` and the choice lists;
no torch), :mod:`~embedhead.heads.models` (the heads), :mod:`~embedhead.heads.data` (split +
store -> batches), :mod:`~embedhead.heads.metrics`, :mod:`~embedhead.heads.train` (``fit``,
``train_head``), :mod:`~embedhead.heads.run` (run folders), :mod:`~embedhead.heads.evaluate` and
:mod:`~embedhead.heads.predict`. Import them by module: this package imports nothing, so
``embedhead.heads.config`` and ``embedhead.heads.metrics`` cost no torch.
Nothing here imports the backbone: embeddings come from the store (``predict`` embeds missing
sequences through :mod:`embedhead.embed.run`).
"""
