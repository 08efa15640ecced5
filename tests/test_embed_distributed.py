"""Two torchrun processes (gloo, CPU) write their own shards; merged, they equal one process."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from embedhead.embed.config import EmbedConfig
from embedhead.embed.distributed import DistContext, dist_context
from embedhead.embed.run import embed_dataset
from embedhead.store import open_store, parts_dir
from embedhead.store.zarr_backend import ZarrEmbeddingStore

BATCH_TOKENS = 300


@pytest.mark.slow
def test_two_process_torchrun_equals_one_process(tmp_path, tiny_dataset_dir, tiny_backbone_dir):
    """HDF5 targets share the merge path with the HDF5 journal (tests of the store cover it)."""
    suffix = ".zarr"
    store = tmp_path / f"two{suffix}"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "embedhead", "embed", str(tiny_dataset_dir), "--backbone", str(tiny_backbone_dir),
        "--store", str(store), "--device", "cpu", "--dtype", "float32",
        "--batch-tokens", str(BATCH_TOKENS), "--quiet",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert not parts_dir(store).exists()

    one = tmp_path / f"one{suffix}"
    config = EmbedConfig(dtype="float32", device="cpu", batch_tokens=BATCH_TOKENS, progress=False)
    embed_dataset(tiny_dataset_dir, one, tiny_backbone_dir, config)
    with open_store(store) as two_proc, open_store(one) as one_proc:
        assert len(one_proc) == 40
        assert sorted(two_proc.ids()) == sorted(one_proc.ids())
        ids = one_proc.ids()
        differ = [s for s in ids if not np.array_equal(two_proc.get(s), one_proc.get(s))]
        assert not differ, f"{len(differ)} sequences differ"
        np.testing.assert_array_equal(two_proc.get_pooled(ids), one_proc.get_pooled(ids))
        assert two_proc.identity == one_proc.identity
        hashes = one_proc.content_hashes()
        assert hashes is not None and all(hashes.values())  # every id has its content hash
        assert two_proc.content_hashes() == hashes  # the ranks' records carry them too
    with ZarrEmbeddingStore(store) as two_proc:  # ... and the crc32c of every chunk they wrote
        ident, rows = two_proc._identity(), two_proc.block_rows
        used = [
            k for k in range(two_proc.n_blocks()) if two_proc.rows_used(k * rows, (k + 1) * rows)
        ]
        assert ident is not None and len(used) >= 2
        assert all(ident.expected(k) is not None for k in used), ident


def test_rank_and_world_from_torchrun_environment(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert dist_context() == DistContext(rank=3, world_size=4, local_rank=1)
    assert dist_context().device_for("cpu") == "cpu"
    monkeypatch.setenv("RANK", "4")
    from embedhead.errors import ConfigError

    with pytest.raises(ConfigError, match="RANK=4"):
        dist_context()
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name)
    assert dist_context() == DistContext()
