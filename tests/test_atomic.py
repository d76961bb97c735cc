"""Atomic writes: readable mode, old content kept when the writer fails, no temporary file left."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import IO, Any

import pytest

from perception_verl.atomic import write_atomically


def test_replaces_the_file_with_mode_0644(tmp_path: Path) -> None:
    target = tmp_path / "out" / "rows.jsonl"
    write_atomically(target, lambda handle: handle.write("one\n"), binary=False)
    write_atomically(target, lambda handle: handle.write("two\n"), binary=False)
    assert target.read_text() == "two\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["rows.jsonl"]


def test_a_failing_writer_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "rows.bin"
    target.write_bytes(b"old")

    def broken(handle: IO[Any]) -> None:
        handle.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomically(target, broken, binary=True)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["rows.bin"]
