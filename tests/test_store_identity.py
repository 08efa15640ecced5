"""Chunk identity (issue 14): a valid ``positions`` chunk copied over another is refused.

Every chunk ends in a crc32c trailer, so a chunk file copied over another chunk of the same array
passes its checksum. The writer records the trailer of every chunk it writes in the commit record
of each batch whose rows lie there (and, before it rewrites a chunk that may hold committed rows,
in an intent object); fold keeps one value per chunk in the ``chunk_crcs`` array; readers compare.
Here: the copy is refused by the training reader (in memory and streamed), evaluate, predict,
embed resume and ``store verify`` (exit 1, array and rows named), before and after folding; and
never a false alarm: the padded chunk rewritten just before a kill, kill -9 at random moments then
resume, chunks swapped with identical content, stores appended to, stores without the record.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import fsspec
import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from embedhead.cli.main import main as cli
from embedhead.dataset import load_dataset
from embedhead.embed.config import EmbedConfig
from embedhead.embed.run import SLOW_ENV, embed_dataset
from embedhead.errors import StoreDamaged
from embedhead.store import layout, open_store, open_writer
from embedhead.store.chunk_objects import ChunkObjects
from embedhead.store.verify import verify_store
from embedhead.store.zarr_backend import ZarrEmbeddingStore, ZarrStoreWriter, read_records
from tests.conftest import row_chunk_key
from tests.test_embed_resume import committed
from tests.test_store_integrity import chunk, read_everything
from tests.test_store_roundtrip import make_attrs

D = 256  # float32: 1024 rows = 1 MiB per positions chunk
R = 1024
WIDE = {"d_model": D, "n_layer": 2, "d_inner": 2 * D, "max_seq_len": 512}
COPIED = r"positions rows (\d+)\.\.(\d+): chunk 1 is not the chunk written there"


def invoke(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.output


def copy_chunk(store: Path, src: int, dst: int) -> None:
    """The attack: ``cp STORE/positions/c/SRC/0 STORE/positions/c/DST/0``."""
    shutil.copy(chunk(store, layout.POSITIONS, src), chunk(store, layout.POSITIONS, dst))


def assert_names_chunk_1(text: str) -> None:
    found = re.search(COPIED, text)
    assert found, text
    assert R <= int(found[1]) <= int(found[2]) < 2 * R, text  # rows inside chunk 1


@pytest.fixture(scope="module")
def wide_backbone(tmp_path_factory) -> Path:
    from embedhead.backbone.presets import write_random_checkpoint

    folder = tmp_path_factory.mktemp("wide") / "bb"
    return write_random_checkpoint(folder, preset="tiny-1k", seed=0, **WIDE)


@pytest.fixture(scope="module")
def wide_store(tmp_path_factory, tiny_dataset_dir, wide_backbone) -> Path:
    """`tiny_dataset_dir` embedded by a d_model 256 backbone (float32): several chunks."""
    path = tmp_path_factory.mktemp("wide_store") / "wide.zarr"
    config = EmbedConfig(dtype="float32", device="cpu", progress=False, batch_tokens=600)
    embed_dataset(tiny_dataset_dir, path, wide_backbone, config)
    with ZarrEmbeddingStore(path) as store:
        assert store.block_rows == R and store.n_blocks() >= 2
        assert store.rows_used(R, 2 * R) and store.chunk_identity_known()
    return path


@pytest.fixture(scope="module")
def wide_run(tmp_path_factory, tiny_dataset_dir, wide_store) -> Path:
    out = tmp_path_factory.mktemp("wide_run") / "run"
    rc, text = invoke(
        "train", tiny_dataset_dir, "--store", wide_store, "--out", out,
        "--epochs", "1", "--device", "cpu", "--quiet", "--head", "thesis",
    )  # fmt: skip
    assert rc == 0, text
    return out


@pytest.fixture
def copied(tmp_path, wide_store) -> Path:
    path = tmp_path / "copied.zarr"
    shutil.copytree(wide_store, path)
    copy_chunk(path, 0, 1)
    return path


def test_every_used_chunk_has_its_crc_recorded(wide_store):
    with ZarrEmbeddingStore(wide_store) as store:
        ident = store._identity()
        assert ident is not None and not ident.pending  # folded: no records left
        assert ident.folded.size == store.n_blocks()
        for k in range(store.n_blocks()):
            trailer = chunk(wide_store, layout.POSITIONS, k).read_bytes()[-4:]
            assert ident.expected(k) == {int.from_bytes(trailer, "little")}
    assert not read_records(wide_store).keys  # records and intents folded and removed


@pytest.mark.parametrize("loader", ["memory", "stream"])
def test_train_refuses_a_copied_chunk(tmp_path, tiny_dataset_dir, copied, loader):
    rc, text = invoke(
        "train", tiny_dataset_dir, "--store", copied, "--out", tmp_path / "run",
        "--epochs", "1", "--device", "cpu", "--quiet", "--head", "thesis", "--loader", loader,
    )  # fmt: skip
    assert rc == 1, text
    assert "damaged store" in text and str(copied) in text
    assert_names_chunk_1(" ".join(text.split()))
    assert not (tmp_path / "run").exists()


def test_evaluate_refuses_a_copied_chunk(tiny_dataset_dir, wide_run, copied):
    rc, text = invoke(
        "evaluate", wide_run, "--dataset", tiny_dataset_dir, "--store", copied, "--device", "cpu"
    )
    assert rc == 1, text
    assert_names_chunk_1(" ".join(text.split()))


def test_predict_refuses_a_copied_chunk(
    tmp_path, tiny_dataset_dir, wide_run, wide_backbone, copied
):
    out = tmp_path / "scores.tsv"
    rc, text = invoke(
        "predict", wide_run, "--backbone", wide_backbone, "--pairs",
        tiny_dataset_dir / "pairs.tsv.gz", "--store", copied, "--out", out, "--device", "cpu",
    )  # fmt: skip
    assert rc == 1, text
    assert_names_chunk_1(" ".join(text.split()))
    assert not out.exists()


def test_embed_resume_refuses_a_copied_chunk(tiny_dataset_dir, wide_backbone, copied):
    before = sorted(p.name for p in copied.rglob("*"))
    rc, text = invoke(
        "embed", tiny_dataset_dir, "--backbone", wide_backbone, "--store", copied,
        "--device", "cpu", "--dtype", "float32", "--quiet",
    )  # fmt: skip
    assert rc == 1, text
    assert_names_chunk_1(" ".join(text.split()))
    assert sorted(p.name for p in copied.rglob("*")) == before  # nothing written


def test_store_verify_reports_the_copied_chunk(copied):
    rc, text = invoke("store", "verify", copied)
    assert rc == 1, text
    assert "positions rows 1024..2047: chunk 1 is not the chunk written there" in text


@pytest.mark.parametrize("how", ["get", "read_block", "iter_chunks", "get_many"])
def test_every_read_path_refuses_a_copied_chunk(copied, how):
    with open_store(copied) as store:
        rows = store.offsets() + store.lengths()
        inside = [s for s, o, e in zip(store.ids(), store.offsets(), rows, strict=True)
                  if o < 2 * R and e > R]  # fmt: skip
        with pytest.raises(StoreDamaged) as err:
            if how == "get":
                store.get(inside[0])
            elif how == "read_block":
                store.read_block(1)
            elif how == "get_many":
                store.get_many(inside)
            else:
                list(store.iter_chunks())
        assert err.value.array == layout.POSITIONS
        assert_names_chunk_1(str(err.value))
        outside = [s for s, e in zip(store.ids(), rows, strict=True) if e <= R]
        store.get(outside[0])  # chunk 0 itself is sound


def _planned(path: Path) -> ZarrStoreWriter:
    writer = open_writer(path, make_attrs(D, "float32"))
    assert isinstance(writer, ZarrStoreWriter) and writer.chunk_rows == R
    return writer


def _rows(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, D)).astype(np.float32)


def _commit(writer: ZarrStoreWriter, key: str, sid: str, offset: int, rows: np.ndarray) -> None:
    writer.commit_batch(
        key, [sid], np.asarray([offset]), np.asarray([rows.shape[0]]), rows.mean(0, keepdims=True)
    )


def test_a_copied_chunk_is_refused_before_folding(tmp_path):
    """Committed batches whose records are not folded yet (a run still going, or killed)."""
    path = tmp_path / "pending.zarr"
    writer = _planned(path)
    a, b = _rows(1, 2 * R), _rows(2, 2 * R)
    base = writer.reserve(4 * R)
    writer.write_region(base, np.concatenate([a, b]))
    _commit(writer, "run-0", "a", base, a)
    _commit(writer, "run-1", "b", base + 2 * R, b)
    writer.abandon()  # killed: records present, never folded
    with open_store(path) as store:
        np.testing.assert_array_equal(store.get("b"), b)
    copy_chunk(path, 0, 1)
    with pytest.raises(StoreDamaged) as err:
        read_everything(path)
    assert_names_chunk_1(str(err.value))
    assert any(re.match(COPIED, p) for p in verify_store(path).problems)


def test_identical_chunks_swapped_are_not_damage(tmp_path):
    path = tmp_path / "twins.zarr"
    x = _rows(3, R)
    with open_writer(path, make_attrs(D, "float32")) as writer:
        writer.write(["x1", "x2"], [x, x.copy()], np.stack([x.mean(0), x.mean(0)]))
    c0, c1 = chunk(path, layout.POSITIONS, 0), chunk(path, layout.POSITIONS, 1)
    assert c0.read_bytes() == c1.read_bytes()
    held = c0.read_bytes()
    shutil.copy(c1, c0)
    c1.write_bytes(held)
    read_everything(path)
    assert verify_store(path).ok


def test_a_chunk_of_an_earlier_run_copied_over_a_later_run_is_refused(tmp_path):
    path = tmp_path / "appended.zarr"
    first, second = _rows(4, R + 100), _rows(5, R + 200)
    for sid, x in (("first", first), ("second", second)):
        with open_writer(path, make_attrs(D, "float32")) as writer:
            writer.write([sid], [x], x.mean(0, keepdims=True))
    with open_store(path) as store:
        assert store.offsets().tolist() == [0, 2 * R]
        assert store.chunk_identity_known()
    read_everything(path)
    shutil.copy(chunk(path, layout.POSITIONS, 0), chunk(path, layout.POSITIONS, 2))
    with pytest.raises(StoreDamaged, match="chunk 2 is not the chunk written there"):
        read_everything(path)


def _killed_after_rewrite(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The exact state a kill leaves right after the padded chunk of a growing write unit was
    rewritten (temporary file renamed) and before the later batch's commit record exists.

    Batch A (700 rows) is written padded to chunk 0 and committed; the unit grows by batch B
    (600 rows): chunk 0 is rewritten with A's rows and B's first rows, chunk 1 written; then
    the process dies before B's record. Chunk 0's trailer is in no commit record.
    """
    writer = _planned(path)
    a, b, _ = _commit_a_then_grow_by_b(writer, 6)  # rewrites chunk 0 (atomically)
    writer.abandon()  # the kill: B never committed
    return a, b


def _commit_a_then_grow_by_b(
    writer: ZarrStoreWriter, seed: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Batch A (700 rows) written padded to chunk 0 and committed; then the unit grows by
    batch B (600 rows): chunk 0 rewritten with A's and B's first rows, chunk 1 written; B not
    committed. Returns (A, B, base row)."""
    a, b = _rows(seed, 700), _rows(seed + 1, 600)
    base = writer.reserve(2 * R)
    first = np.zeros((R, D), np.float32)
    first[:700] = a
    writer.write_region(base, first)
    _commit(writer, "run-00000000", "a", base, a)
    both = np.zeros((2 * R, D), np.float32)
    both[:700], both[700:1300] = a, b
    writer.write_region(base, both)
    return a, b, base


def test_no_false_alarm_after_a_kill_between_the_rewrite_and_the_commit(tmp_path):
    path = tmp_path / "rewritten.zarr"
    a, b = _killed_after_rewrite(path)
    records = read_records(path)
    assert records.ids == ["a"] and len(records.intent_chunks) == 1  # chunk 0's intent
    with open_store(path) as store:
        np.testing.assert_array_equal(store.get("a"), a)
    read_everything(path)
    assert verify_store(path).ok
    # the resume writes B into a fresh region and folds; chunk 0 is never rewritten again
    with open_writer(path, make_attrs(D, "float32")) as writer:
        writer.write(["b"], [b], b.mean(0, keepdims=True))
    with open_store(path) as store:
        np.testing.assert_array_equal(store.get("a"), a)
        np.testing.assert_array_equal(store.get("b"), b)
        assert store.offsets()[1] >= 2 * R and store.chunk_identity_known()
    read_everything(path)
    assert verify_store(path).ok
    assert not read_records(path).keys
    copy_chunk(path, 2, 0)  # the check is still on for chunk 0 after the fold
    with pytest.raises(StoreDamaged, match="chunk 0 is not the chunk written there"):
        read_everything(path)


def test_a_reader_open_while_the_writer_rewrites_a_chunk_sees_no_damage(tmp_path):
    """A reader's view is the records at its open; a chunk rewritten after that (its intent
    written first) or folded since is accepted on a second look."""
    path = tmp_path / "live.zarr"
    writer = _planned(path)
    a = _rows(9, 700)
    base = writer.reserve(2 * R)
    first = np.zeros((R, D), np.float32)
    first[:700] = a
    writer.write_region(base, first)
    _commit(writer, "run-00000000", "a", base, a)
    with open_store(path) as reader:
        np.testing.assert_array_equal(reader.get("a"), a)  # expected crcs loaded here
        b = _rows(10, 600)
        both = np.zeros((2 * R, D), np.float32)
        both[:700], both[700:1300] = a, b
        writer.write_region(base, both)  # chunk 0 rewritten under the open reader
        np.testing.assert_array_equal(reader.get("a"), a)
        _commit(writer, "run-00000001", "b", base + 700, b)
        writer.close()  # folded: records and intents gone, chunk_crcs holds the trailer
        np.testing.assert_array_equal(reader.get("a"), a)
        copy_chunk(path, 1, 0)  # and a real copy is still refused by that reader
        with pytest.raises(StoreDamaged, match="chunk 0 is not the chunk written there"):
            reader.get("a")


def test_without_the_intent_that_kill_would_read_as_damage(tmp_path, monkeypatch):
    """The control of the test above: the intent object is what keeps it from a false alarm."""
    monkeypatch.setattr(ZarrStoreWriter, "_intend", lambda self, chunk, crc: None)
    path = tmp_path / "no-intent.zarr"
    _killed_after_rewrite(path)
    with pytest.raises(StoreDamaged, match="chunk 0 is not the chunk written there"):
        read_everything(path)


def test_stores_without_chunk_crcs_still_read_and_verify_says_so(tmp_path, wide_store):
    path = tmp_path / "old.zarr"
    shutil.copytree(wide_store, path)
    shutil.rmtree(path / layout.CHUNK_CRCS)  # a format-2 store written before the array
    with open_store(path) as store:
        assert not store.chunk_identity_known()
    read_everything(path)
    report = verify_store(path)
    assert report.ok and any("chunk identity check unavailable" in n for n in report.notes)
    x = _rows(8, 300)
    attrs = dict(open_store(path).attrs)
    with open_writer(path, {k: attrs[k] for k in make_attrs(D, "float32")}) as writer:
        writer.write(["appended"], [x], x.mean(0, keepdims=True))
    assert not (path / layout.CHUNK_CRCS).exists()  # an append keeps the old layout
    with open_store(path) as store:
        np.testing.assert_array_equal(store.get("appended"), x)


# -- real kills ------------------------------------------------------------------------------
def _embed_cmd(dataset: Path, backbone: Path, store: Path) -> list[str]:
    return [
        sys.executable, "-m", "embedhead", "embed", str(dataset), "--backbone", str(backbone),
        "--store", str(store), "--device", "cpu", "--dtype", "float32", "--batch-tokens", "150",
        "--quiet",
    ]  # fmt: skip


def _intents(path: Path) -> int:
    folder = path / layout.COMMITS
    return len(list(folder.glob("*.intent"))) if folder.is_dir() else 0


@pytest.mark.slow
def test_kill_at_random_moments_then_resume_reads_everything(
    tmp_path, tiny_dataset_dir, tiny_backbone_dir
):
    """kill -9 a real ``embed`` once it has rewritten a padded chunk (small batches share a
    unit, whose padded chunk is rewritten at every flush), read the partial store, kill the
    rerun too (when it lives that long), then finish: no false alarm anywhere."""
    store = tmp_path / "killed.zarr"
    cmd = _embed_cmd(tiny_dataset_dir, tiny_backbone_dir, store)
    env = {**os.environ, SLOW_ENV: "0.2", "OMP_NUM_THREADS": "1"}
    seed = int(time.time())
    rng = np.random.default_rng(seed)
    kills = 0
    for round_ in range(2):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 600
        seen = _intents(store)
        # until this run has committed a batch and rewritten that batch's padded chunk
        while _intents(store) <= seen and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        # somewhere inside a flush cycle: at this batch sleep a new intent appears every ~1 s,
        # and ~2.4-2.6 s of the run are left after the first (measured); up to 2.5 s let a
        # few runs in 100 finish before their kill, and then no later round can be killed
        time.sleep(float(rng.uniform(0.0, 1.25)))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        out = proc.communicate()[0].decode()
        kills += proc.returncode == -signal.SIGKILL
        assert proc.returncode in (0, -signal.SIGKILL), out
        if committed(store):
            read_everything(store)  # pending records + intents: no false alarm
            report = verify_store(store)
            assert report.ok, (round_, report.problems)
    assert kills, f"every run finished before its kill (seed {seed})"
    rerun = subprocess.run(cmd, env={**env, SLOW_ENV: "0"}, capture_output=True)
    assert rerun.returncode == 0, rerun.stderr.decode()[-3000:]
    with open_store(store) as done:
        assert len(done) == load_dataset(tiny_dataset_dir).info["n_sequences"]
        assert done.chunk_identity_known()
    read_everything(store)
    assert verify_store(store, tiny_dataset_dir).ok
    assert not read_records(store).keys


# --- pooled chunks: pooled_crcs ------------------------------------------------------------------
def _pooled_store(path, n: int, *, pooled_only: bool = False, folds: int = 1):
    """A store of ``n`` one-row sequences (``n > R``: two or more pooled chunks), written in
    ``folds`` writer sessions (each fold after the first rewrites the last pooled chunk)."""
    rng = np.random.default_rng(5)
    rows = rng.standard_normal((n, D)).astype(np.float32)
    attrs = make_attrs(D, "float32", pooled_only=pooled_only)
    for part in np.array_split(np.arange(n), folds):
        with open_writer(path, attrs) as writer:
            writer.write([f"p{i}" for i in part], [rows[i : i + 1] for i in part], rows[part])
    return rows


def _fs_of(store):
    return (
        fsspec.filesystem("memory")
        if str(store).startswith("memory://")
        else fsspec.filesystem("file")
    )


@pytest.mark.parametrize("where", ["local", "memory-url", "pooled-only"])
def test_a_copied_pooled_chunk_is_refused_by_every_reader(tmp_path, where):
    store = (
        f"memory://pooled-{uuid.uuid4().hex[:8]}.zarr"
        if where == "memory-url"
        else str(tmp_path / "p.zarr")
    )
    rows = _pooled_store(store, R + 300, pooled_only=where == "pooled-only", folds=2)
    with open_store(store) as s:  # sound: both folds' trailers are recorded
        np.testing.assert_array_equal(s.get_pooled(s.ids()), rows)
    assert verify_store(store).ok
    fs = _fs_of(store)
    fs.pipe_file(
        row_chunk_key(fs, store, layout.POOLED, 1),
        fs.cat_file(row_chunk_key(fs, store, layout.POOLED, 0)),
    )
    with open_store(store) as s:
        np.testing.assert_array_equal(s.get_pooled(["p3"]), rows[3:4])  # chunk 0 is intact
        with pytest.raises(StoreDamaged, match=r"pooled rows 1024\.\.\d+: chunk 1 is not"):
            s.get_pooled([f"p{R + 5}"])
    with pytest.raises(StoreDamaged, match="pooled rows"), open_store(store) as s:
        for _ in s.iter_chunks(positions=False):
            pass
    report = verify_store(store)
    assert any(
        p.startswith("pooled rows 1024..1323: chunk 1 is not the chunk written there")
        for p in report.problems
    ), report.problems
    with pytest.raises(StoreDamaged, match="chunk 1 is not the chunk written there"):
        open_writer(store, make_attrs(D, "float32", pooled_only=where == "pooled-only"))


def test_pooled_crcs_keep_the_trailer_before_and_after_each_fold(tmp_path):
    store = tmp_path / "p.zarr"
    _pooled_store(store, R + 300, folds=3)
    table = np.asarray(zarr.open_group(str(store), mode="r")[layout.POOLED_CRCS][:])
    trailers = [
        int.from_bytes(chunk(store, layout.POOLED, k).read_bytes()[-4:], "little") for k in (0, 1)
    ]
    assert table.shape == (2, 2) and list(table[:, 0]) == trailers
    # folds of 442 rows: the 2nd and 3rd rewrote chunk 0 (its previous trailer is kept); the
    # 3rd wrote chunk 1 new
    assert table[0, 1] != 0 and table[0, 1] != table[0, 0] and table[1, 1] == 0


@pytest.mark.parametrize("kill", ["before the chunk", "before the marker"])
def test_a_fold_killed_midway_leaves_a_readable_store_and_resumes(tmp_path, monkeypatch, kill):
    """The last pooled chunk holds folded rows when a fold rewrites it: killed after
    pooled_crcs names its new trailer but before the chunk is replaced (the old bytes are
    still accepted), or after the replace but before the marker (the new bytes are)."""
    store = tmp_path / "p.zarr"
    rows = _pooled_store(store, 700)  # one pooled chunk, 700 rows folded
    more = np.random.default_rng(6).standard_normal((100, D)).astype(np.float32)
    ids = [f"q{i}" for i in range(100)]

    class Killed(BaseException):
        pass

    def die(*args, **kwargs):
        raise Killed

    target = (
        (ChunkObjects, "replace")
        if kill == "before the chunk"
        else (zarr.Group, "update_attributes")
    )
    writer = open_writer(store, make_attrs(D, "float32"))
    writer.write(ids, [more[i : i + 1] for i in range(100)], more)
    with monkeypatch.context() as patched:
        patched.setattr(*target, die)
        with pytest.raises(Killed):
            writer.close()
    writer.abandon()
    with open_store(store) as s:  # the pending records and the rewritten (or not) chunk
        assert len(s) == 800
        np.testing.assert_array_equal(s.get_pooled([f"p{i}" for i in range(700)]), rows)
        np.testing.assert_array_equal(s.get_pooled(ids), more)
    assert verify_store(store).ok
    with open_writer(store, make_attrs(D, "float32")):  # the next session folds them
        pass
    assert not read_records(store).ids
    with open_store(store) as s:
        np.testing.assert_array_equal(s.get_pooled(ids), more)
    assert verify_store(store).ok
