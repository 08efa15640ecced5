"""start_writeback: the writer's chunk files start their writeback as they are written."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from embedhead import fileio
from embedhead.store import chunk_objects

linux = pytest.mark.skipif(sys.platform != "linux", reason="sync_file_range is Linux-only")


@linux
def test_writeback_starts_on_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    with open(path, "wb") as fh:
        fh.write(os.urandom(1 << 20))
        fh.flush()
        assert fileio.start_writeback(fh.fileno()) is True
    assert path.stat().st_size == 1 << 20


@linux
def test_writeback_on_a_pipe_is_refused_quietly() -> None:
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"x")
        assert fileio.start_writeback(write_end) is False  # ESPIPE, no exception
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_new_chunk_file_starts_its_writeback_once_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """write_file hands the kernel the fd of the file it wrote, after every byte is in it."""
    seen: list[tuple[int, int]] = []

    def spy(fd: int) -> bool:
        info = os.fstat(fd)
        seen.append((info.st_ino, info.st_size))
        return fileio.start_writeback(fd)

    monkeypatch.setattr(chunk_objects, "start_writeback", spy)
    body, trailer = os.urandom(3000), b"\x01\x02\x03\x04"
    path = tmp_path / "c.0.0"
    chunk_objects.write_file(path, (body, memoryview(trailer)))
    assert path.read_bytes() == body + trailer
    assert seen == [(path.stat().st_ino, len(body) + len(trailer))]
