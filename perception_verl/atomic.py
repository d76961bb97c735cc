"""Atomic file output: write beside the destination, fsync, then rename over it.

A reader, or a run interrupted at any moment (even by SIGKILL), sees either the old file or the new
one, never a half-written file. Temporary files are hidden (``.<name>.<random>.tmp``) in the
destination's folder so the rename stays on one filesystem.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o644


def fsync_dir(directory: Path) -> None:
    """Persist a rename in ``directory`` (best effort: some filesystems refuse to fsync a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def stage_file(destination: Path, write: Callable[[IO[Any]], None], *, binary: bool) -> Path:
    """Write a hidden temporary file next to ``destination`` with ``write(handle)``, fsync it, return it.

    The file gets mode 0644 (``mkstemp`` would leave 0600). On any error the temporary file is removed.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".tmp")
    temp = Path(name)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def write_atomically(destination: Path, write: Callable[[IO[Any]], None], *, binary: bool) -> None:
    """Replace ``destination`` with what ``write(handle)`` writes, atomically."""
    temp = stage_file(destination, write, binary=binary)
    try:
        os.replace(temp, destination)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(destination.parent)
