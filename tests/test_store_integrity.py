"""Damaged stores: every chunk carries a checksum, every reader refuses damage with one clear error.

Zarr chunks end in zarr's crc32c trailer (written by embedhead's own chunk encoder and by zarr;
each decodes the other's), HDF5 chunks carry fletcher32. A chunk that is deleted, truncated,
zeroed, bit-flipped or copied over another is a StoreDamaged naming the store, the array and
the rows: never zeros, never a raw codec error. ``verify_store`` reads every chunk and reports
each damaged one; a copied-over positions chunk (valid checksum, wrong place) is refused by the
chunk identity check (``chunk_crcs``, tests/test_store_identity.py), and in a store without that
record caught by verify's pooled-vs-positions check.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from embedhead.cli.main import main as cli
from embedhead.errors import ConfigError, InputError, StoreDamaged, StoreWriteError
from embedhead.store import layout, open_store, open_writer, parts_dir
from embedhead.store.verify import verify_store
from embedhead.store.zarr_backend import ZarrEmbeddingStore
from tests.conftest import chunk_file
from tests.test_store_roundtrip import make_attrs

D = 256  # float32: 1024 rows = 1 MiB per positions chunk
LENGTHS = (300, 500, 260, 700, 240, 400)  # 2400 rows: three positions chunks
IDS = [f"s{i}" for i in range(len(LENGTHS))]


def build(path: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    data = {
        sid: rng.standard_normal((n, D)).astype(np.float32)
        for sid, n in zip(IDS, LENGTHS, strict=True)
    }
    with open_writer(path, make_attrs(D, "float32")) as writer:
        writer.write(IDS, [data[s] for s in IDS], np.stack([data[s].mean(0) for s in IDS]))
    return data


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> dict[str, tuple[Path, dict[str, np.ndarray]]]:
    folder = tmp_path_factory.mktemp("pristine")
    return {
        suffix: (folder / f"s{suffix}", build(folder / f"s{suffix}")) for suffix in (".zarr", ".h5")
    }


def copy_of(pristine, suffix: str, tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    src, data = pristine[suffix]
    dst = tmp_path / src.name
    (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    return dst, data


def chunk(path: Path, name: str, k: int) -> Path:
    return chunk_file(path, name, k)


def read_everything(path: Path) -> None:
    """What train / evaluate / predict / embed resume do with a store: open, read it all."""
    with open_store(path) as store:
        for sid in store.ids():
            store.get(sid)
        store.get_pooled(store.ids())
        for k in range(store.n_blocks()):
            store.read_block(k)
        for _ in store.iter_chunks():
            pass


def test_new_zarr_stores_checksum_every_array(pristine):
    path, _ = pristine[".zarr"]
    root = zarr.open_group(str(path), mode="r")
    for name in (layout.POSITIONS, layout.POOLED, layout.IDS, layout.OFFSETS, layout.LENGTHS):
        assert type(root[name].metadata.codecs[-1]).__name__ == "Crc32cCodec", name


def test_zarr_decodes_our_chunks_and_we_decode_zarrs(tmp_path, pristine):
    path, data = copy_of(pristine, ".zarr", tmp_path)
    root = zarr.open_group(str(path), mode="r+")
    positions = root[layout.POSITIONS]
    np.testing.assert_array_equal(positions[300:800], data["s1"])  # zarr verifies our crc32c
    # zarr writes chunk 1 itself; our raw chunk reader (crc32c checked) gives back the same
    new = np.random.default_rng(9).standard_normal((1024, D)).astype(np.float32)
    positions[1024:2048] = new
    store = ZarrEmbeddingStore(path)  # not the chunk embedhead wrote there: refused
    with pytest.raises(StoreDamaged, match="chunk 1 is not the chunk written there"):
        store.read_block(1)
    trailer = chunk(path, layout.POSITIONS, 1).read_bytes()[-4:]
    root[layout.CHUNK_CRCS][1] = int.from_bytes(trailer, "little")  # as if the writer knew it
    with ZarrEmbeddingStore(path) as store:
        assert store._raw_chunks() is not None and store._raw_chunks().crc
        np.testing.assert_array_equal(store.read_block(1), new)
    # our trailer is zarr's: one flipped byte and zarr itself refuses the chunk
    blob = bytearray(chunk(path, layout.POSITIONS, 0).read_bytes())
    blob[len(blob) // 2] ^= 0x01
    chunk(path, layout.POSITIONS, 0).write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="checksum"):
        positions[0:10]


def _delete(p: Path) -> None:
    p.unlink()


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])


def _zero(p: Path) -> None:
    p.write_bytes(bytes(len(p.read_bytes())))


def _flip(p: Path) -> None:
    blob = bytearray(p.read_bytes())
    blob[len(blob) // 3] ^= 0x10
    p.write_bytes(bytes(blob))


DAMAGES = {"deleted": _delete, "truncated": _truncate, "zeroed": _zero, "flipped": _flip}


@pytest.mark.parametrize("how", list(DAMAGES))
@pytest.mark.parametrize("name", [layout.POSITIONS, layout.POOLED])
def test_damaged_zarr_data_chunk_is_refused_by_every_reader(tmp_path, pristine, name, how):
    path, _ = copy_of(pristine, ".zarr", tmp_path)
    DAMAGES[how](chunk(path, name, 1 if name == layout.POSITIONS else 0))
    with pytest.raises(StoreDamaged) as err:
        read_everything(path)
    # the error names the store, the array and rows the failed read touched in that chunk
    assert str(path) in str(err.value)
    found = re.search(rf"{name} rows (\d+)\.\.(\d+)", str(err.value))
    assert found, str(err.value)
    lo, hi = int(found[1]), int(found[2])
    assert (lo <= 2047 and hi >= 1024) if name == layout.POSITIONS else lo == 0, str(err.value)
    report = verify_store(path)
    whole = "positions rows 1024..2047" if name == layout.POSITIONS else "pooled rows 0..5"
    assert any(p.startswith(whole) for p in report.problems), report.problems


@pytest.mark.parametrize("how", list(DAMAGES))
@pytest.mark.parametrize("name", [layout.IDS, layout.OFFSETS, layout.LENGTHS])
def test_damaged_zarr_index_chunk_refuses_to_open(tmp_path, pristine, name, how):
    path, _ = copy_of(pristine, ".zarr", tmp_path)
    DAMAGES[how](chunk(path, name, 0))
    with pytest.raises(StoreDamaged, match=name):
        open_store(path)
    report = verify_store(path)  # reported, not raised
    assert not report.ok and any(name in p for p in report.problems), report.problems


def test_positions_chunk_copied_over_another_fails_verify(tmp_path, pristine):
    path, _ = copy_of(pristine, ".zarr", tmp_path)
    shutil.copy(chunk(path, layout.POSITIONS, 0), chunk(path, layout.POSITIONS, 1))
    report = verify_store(path)  # the chunk identity check (chunk_crcs) names the chunk
    assert len(report.problems) == 1, report.problems
    assert report.problems[0].startswith(
        "positions rows 1024..2047: chunk 1 is not the chunk written there"
    ), report.problems
    with pytest.raises(StoreDamaged, match="chunk 1 is not the chunk written there"):
        read_everything(path)
    # a store without chunk_crcs (written before it existed): verify's mean check catches it
    shutil.rmtree(path / layout.CHUNK_CRCS)
    report = verify_store(path)
    assert not report.ok
    assert any("pooled" in p and "positions" in p for p in report.problems), report.problems
    bad = {p.split(":")[0] for p in report.problems}
    assert bad == {"s2", "s3", "s4", "s5"}, report.problems  # rows 1024..2047 hold parts of these
    assert any("chunk identity check unavailable" in n for n in report.notes), report.notes


def test_index_chunk_copied_over_another_is_refused(tmp_path, pristine):
    path, _ = copy_of(pristine, ".zarr", tmp_path)
    shutil.copy(chunk(path, layout.LENGTHS, 0), chunk(path, layout.OFFSETS, 0))
    with pytest.raises(StoreDamaged, match="damaged store index"):
        open_store(path)


def test_gap_chunks_no_sequence_uses_may_be_absent(tmp_path):
    """Rows reserved by a batch killed before its commit are never written: not damage."""
    path = tmp_path / "s.zarr"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, D)).astype(np.float32)
    with open_writer(path, make_attrs(D, "float32")) as writer:
        writer.write(["a"], [x], x.mean(0, keepdims=True))
    writer = open_writer(path, make_attrs(D, "float32"))
    writer.reserve(3000)  # a run killed after reserving, before writing
    writer.abandon()
    with open_writer(path, make_attrs(D, "float32")) as writer:
        writer.write(["b"], [x * 2], x.mean(0, keepdims=True) * 2)
    with open_store(path) as store:
        assert store.offsets()[1] >= 3000
        np.testing.assert_array_equal(store.get("a"), x)
        np.testing.assert_array_equal(store.get("b"), x * 2)
        for k in range(store.n_blocks()):
            store.read_block(k)
    assert verify_store(path).ok


def _h5_chunk_offset(path: Path, name: str, k: int) -> tuple[int, int]:
    with h5py.File(path, "r") as f:
        info = f[name].id.get_chunk_info(k)
        return int(info.byte_offset), int(info.size)


@pytest.mark.parametrize("name", [layout.POSITIONS, layout.POOLED, layout.LENGTHS])
def test_flipped_hdf5_chunk_is_refused_by_every_reader(tmp_path, pristine, name):
    path, _ = copy_of(pristine, ".h5", tmp_path)
    k = 1 if name == layout.POSITIONS else 0
    offset, size = _h5_chunk_offset(path, name, k)
    blob = bytearray(path.read_bytes())
    blob[offset + size // 2] ^= 0x04
    path.write_bytes(bytes(blob))
    with pytest.raises(StoreDamaged, match=name) as err:
        read_everything(path)
    assert str(path) in str(err.value)
    if name != layout.LENGTHS:  # a damaged index refuses to open; data damage is listed
        report = verify_store(path)
        assert any(p.startswith(f"{name} rows") for p in report.problems), report.problems


def _h5_copy_chunk_bytes(path: Path, name: str, src: int, dst: int) -> None:
    """Overwrite chunk ``dst``'s bytes in the file with chunk ``src``'s (equal sizes)."""
    (s_off, s_size), (d_off, d_size) = (_h5_chunk_offset(path, name, k) for k in (src, dst))
    assert s_size == d_size
    blob = bytearray(path.read_bytes())
    blob[d_off : d_off + d_size] = blob[s_off : s_off + s_size]
    path.write_bytes(bytes(blob))


def _h5_copy_chunk_direct(path: Path, name: str, src: int, dst: int) -> None:
    """Store chunk ``src``'s encoded bytes as chunk ``dst`` (h5py's direct chunk write)."""
    with h5py.File(path, "r+") as f:
        ds = f[name]
        per = ds.chunks[0]
        rest = (0,) * (ds.ndim - 1)
        mask, raw = ds.id.read_direct_chunk((src * per, *rest))
        ds.id.write_direct_chunk((dst * per, *rest), raw, mask)


@pytest.mark.parametrize("compression", ["none", "zstd"])
def test_hdf5_chunk_copied_over_another_is_refused(tmp_path, compression):
    """A valid chunk in the wrong place passes fletcher32; its trailer is not the one recorded
    in ``chunk_checksums`` for that place, so every reader and verify refuse it."""
    path = tmp_path / "s.h5"
    rng = np.random.default_rng(3)
    data = [rng.standard_normal((n, D)).astype(np.float32) for n in LENGTHS]
    attrs = {**make_attrs(D, "float32"), "compression": compression}
    with open_writer(path, attrs) as writer:
        writer.write(IDS, data, np.stack([x.mean(0) for x in data]))
    with h5py.File(path, "r") as f:  # plain h5py sees one uint32 per chunk
        assert f[f"{layout.CHUNK_CHECKSUMS}/{layout.POSITIONS}"].shape == (3,)
        assert f[f"{layout.CHUNK_CHECKSUMS}/{layout.POOLED}"].shape == (1,)
    read_everything(path)  # the record matches what was written
    assert verify_store(path).ok
    pristine_bytes = path.read_bytes()
    copy = _h5_copy_chunk_bytes if compression == "none" else _h5_copy_chunk_direct
    copy(path, layout.POSITIONS, 0, 1)
    with open_store(path) as store:  # rows of chunk 0 still read (each chunk checked alone)
        np.testing.assert_array_equal(store.get("s0"), data[0])
        with pytest.raises(StoreDamaged, match="chunk 1 is not the chunk written there") as err:
            store.get("s3")  # rows 1060..1759
    assert str(path) in str(err.value) and "positions rows 1024..2047" in str(err.value)
    with pytest.raises(StoreDamaged, match=r"positions rows 1024\.\.2047"):
        read_everything(path)
    report = verify_store(path)
    assert any(
        p.startswith("positions rows 1024..2047: chunk 1 is not the chunk written there")
        for p in report.problems
    ), report.problems
    result = CliRunner().invoke(cli, ["store", "verify", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    damaged_bytes = path.read_bytes()
    with pytest.raises(StoreDamaged, match="chunk 1 is not the chunk written there"):
        open_writer(path, attrs)  # an append (embed resume) refuses before embedding anything
    assert path.read_bytes() == damaged_bytes and not parts_dir(path).exists()
    # a file without the record (written before it existed) opens unchecked; verify's
    # pooled-vs-positions check still catches the copy and says the identity check is off
    path.write_bytes(pristine_bytes)
    with h5py.File(path, "r+") as f:
        del f[layout.CHUNK_CHECKSUMS]
    copy(path, layout.POSITIONS, 0, 1)
    with open_store(path) as store:
        assert not store.chunk_identity_known()
        store.get("s3")  # read as it is stored
    report = verify_store(path)
    assert not report.ok and any("pooled" in p for p in report.problems), report.problems
    assert any("chunk identity check unavailable" in n for n in report.notes), report.notes


def test_hdf5_pooled_and_index_chunks_are_checked_too(tmp_path):
    path = tmp_path / "s.h5"
    rng = np.random.default_rng(4)
    n = layout.INDEX_CHUNK + 10  # two chunks of offsets/lengths, two of pooled (1024 rows each)
    rows = [rng.standard_normal((1, D)).astype(np.float32) for _ in range(n)]
    attrs = {**make_attrs(D, "float32"), "compression": "none"}
    with open_writer(path, attrs) as writer:
        ids = [f"q{i}" for i in range(n)]
        writer.write(ids, rows, np.concatenate(rows))
    _h5_copy_chunk_direct(path, layout.POOLED, 0, 1)
    with open_store(path) as store, pytest.raises(StoreDamaged, match=r"pooled rows 1024\.\.2047"):
        store.get_pooled(["q1500"])
    _h5_copy_chunk_direct(path, layout.OFFSETS, 1, 0)
    with pytest.raises(StoreDamaged, match=r"offsets rows 0\.\.8191: chunk 0 is not the chunk"):
        open_store(path)


def test_cli_store_verify_reports_damage_and_exits_1(tmp_path, pristine):
    path, _ = copy_of(pristine, ".zarr", tmp_path)
    _flip(chunk(path, layout.POSITIONS, 2))
    result = CliRunner().invoke(cli, ["store", "verify", str(path)])
    assert result.exit_code == 1, result.output
    assert "positions rows 2048..2399: crc32c checksum mismatch" in result.output
    _delete(chunk(path, layout.LENGTHS, 0))
    result = CliRunner().invoke(cli, ["store", "verify", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "lengths rows 0..5: 1 chunk file(s) missing" in result.output


def test_archives_without_checksums_still_open_and_verify():
    archives = Path(__file__).resolve().parent / "data" / "archives"
    for suffix in (".zarr", ".h5"):
        report = verify_store(archives / f"store{suffix}")
        assert report.ok, report.problems


def test_store_damaged_is_an_input_error():
    assert issubclass(StoreDamaged, InputError)


def _one(sid: str, value: float) -> tuple[list[str], list[np.ndarray], np.ndarray]:
    x = np.full((5, D), value, np.float32)
    return [sid], [x], x[:1]


@pytest.mark.parametrize("suffix", [".zarr", ".h5"])
def test_disk_full_is_one_clear_error_and_resume_works(tmp_path, monkeypatch, suffix):
    import embedhead.store.zarr_backend as zarr_backend

    path = tmp_path / f"s{suffix}"
    attrs = make_attrs(D, "float32")
    with open_writer(path, attrs) as writer:
        writer.write(*_one("a", 1.0))
    real = zarr_backend.put_object

    def full(target, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(zarr_backend, "put_object", full)
    writer = open_writer(path, attrs)
    with pytest.raises(StoreWriteError, match=r"No space left on device.*rerun the same command"):
        writer.write(*_one("b", 2.0))
        writer.commit()
    writer.abandon()
    monkeypatch.setattr(zarr_backend, "put_object", real)  # space freed
    with open_writer(path, attrs) as writer:
        assert "a" in writer and "b" not in writer
        writer.write(*_one("b", 2.0))
    with open_store(path) as store:
        assert store.ids() == ["a", "b"]
        np.testing.assert_array_equal(store.get("b"), np.full((5, D), 2.0, np.float32))


def test_rerun_on_a_complete_h5_does_not_rewrite_it(tmp_path):
    path = tmp_path / "s.h5"
    attrs = make_attrs(D, "float32")
    with open_writer(path, attrs) as writer:
        writer.write(*_one("a", 1.0))
    before = path.stat()
    with open_writer(path, attrs) as writer:
        assert "a" in writer  # nothing new to write
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_hdf5_lock_is_held_through_the_final_rebuild(tmp_path, monkeypatch):
    import embedhead.store.hdf5_backend as hdf5_backend

    path = tmp_path / "s.h5"
    attrs = make_attrs(D, "float32")
    real = hdf5_backend.publish
    seen: list[str] = []

    def publish_with_a_second_writer(tmp, target):
        try:  # a second embed starting while the first rebuilds the file
            open_writer(target, attrs).abandon()
        except ConfigError as exc:
            seen.append(str(exc))
        assert tmp.exists()  # the first one's temporary file is untouched
        real(tmp, target)

    monkeypatch.setattr(hdf5_backend, "publish", publish_with_a_second_writer)
    with open_writer(path, attrs) as writer:
        writer.write(*_one("a", 1.0))
    assert seen and "another process is writing" in seen[0]
    with open_store(path) as store:
        assert store.ids() == ["a"]


@pytest.mark.parametrize("suffix", [".zarr", ".h5"])
def test_reused_id_with_other_content_of_the_same_length_is_caught(
    tmp_path, suffix, tiny_backbone_dir
):
    from embedhead.embed.config import EmbedConfig
    from embedhead.embed.run import embed_dataset
    from tests.test_embed import QUIET, write_fasta

    store = tmp_path / f"s{suffix}"
    first = write_fasta(tmp_path / "a.fa.gz", [("x", "ACGTACGTAC"), ("y", "GGGGCCCC")])
    embed_dataset(first, store, tiny_backbone_dir, EmbedConfig(**QUIET))
    with open_store(store) as opened:
        hashes = opened.content_hashes()
    assert hashes == {"x": layout.content_hash("ACGTACGTAC"), "y": layout.content_hash("GGGGCCCC")}
    assert verify_store(store, first).ok
    # "x" now names another sequence of the same length: refused, nothing written
    second = write_fasta(tmp_path / "b.fa.gz", [("x", "TTTTACGTAC"), ("z", "ACGTTT")])
    with pytest.raises(InputError, match=r"'x' is stored .* for another sequence"):
        embed_dataset(second, store, tiny_backbone_dir, EmbedConfig(**QUIET))
    with open_store(store) as opened:
        assert sorted(opened.ids()) == ["x", "y"]
    report = verify_store(store, second)
    assert any(p.startswith("x: the store holds another sequence") for p in report.problems)


def test_stores_without_hashes_skip_the_check_and_verify_says_so():
    archives = Path(__file__).resolve().parent / "data" / "archives"
    for suffix in (".zarr", ".h5"):
        with open_store(archives / f"store{suffix}") as store:
            assert store.content_hashes() is None
        report = verify_store(archives / f"store{suffix}", archives / "dataset")
        assert report.ok, report.problems
        assert any("no content hashes" in n for n in report.notes)
        assert "note: store has no content hashes" in report.describe()


@pytest.mark.parametrize("suffix", [".zarr", ".h5"])
def test_a_failed_first_embed_leaves_no_store(tmp_path, suffix):
    path = tmp_path / f"s{suffix}"
    writer = open_writer(path, make_attrs(D, "float32"))
    writer.write(*_one("a", 1.0))  # written, never committed: the run fails here
    writer.abandon()
    assert not path.exists() and not (tmp_path / f"s{suffix}.parts").exists()
    # another backbone may now use the path
    with open_writer(path, make_attrs(D, "float32", key="other")) as writer:
        writer.write(*_one("a", 1.0))
    with open_store(path) as store:
        assert store.attrs["backbone_key"] == "other" and store.ids() == ["a"]


@pytest.mark.parametrize("damage", ["lengths", "positions"])
def test_train_refuses_a_damaged_store_with_exit_1(
    tmp_path, tiny_dataset_dir, heads_tiny_store, damage
):
    store = tmp_path / "tiny.zarr"
    shutil.copytree(heads_tiny_store, store)
    if damage == "lengths":
        _delete(chunk(store, layout.LENGTHS, 0))  # zarr alone would read it as zeros
    else:
        _flip(chunk(store, layout.POSITIONS, 0))
    result = CliRunner().invoke(
        cli,
        ["train", str(tiny_dataset_dir), "--store", str(store), "--out", str(tmp_path / "run"),
         "--epochs", "1", "--device", "cpu", "--quiet", "--head", "thesis"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "damaged store" in result.output and f"{damage} rows 0.." in result.output
    assert not (tmp_path / "run").exists()  # nothing trained on damaged embeddings


def test_a_failed_object_write_leaves_no_temporary_file(tmp_path):
    from embedhead.store.zarr_backend import put_object

    target = tmp_path / "commits" / "0-run.npz"
    target.mkdir(parents=True)  # a folder in the way: the final rename fails for real
    with pytest.raises(OSError):
        put_object(target, b"record")
    assert sorted(p.name for p in target.parent.iterdir()) == ["0-run.npz"]


def test_store_merge_refuses_a_journal_that_embed_still_writes(tmp_path):
    path = tmp_path / "s.h5"
    writer = open_writer(path, make_attrs(D, "float32"))  # an embed in progress: its journal
    writer.write(*_one("a", 1.0))
    writer.commit()
    result = CliRunner().invoke(cli, ["store", "merge", str(path)])
    assert result.exit_code == 1 and "another process is writing" in result.output
    assert not path.exists()  # nothing merged from the journal still being written
    writer.close()  # the embed finishes: folds its journal into the file
    result = CliRunner().invoke(cli, ["store", "merge", str(path)])
    assert result.exit_code == 0 and "merged 0 sequences" in result.output
    with open_store(path) as store:
        assert store.ids() == ["a"]
