"""Atomic writes: a file or a directory appears under its name complete, or not at all.

Everything is written beside the target under a temporary name that holds the writer's process id,
fsynced, then renamed over (a file) or onto (a directory) the target, and the rename made durable by
fsyncing the parent directory. A crash or a kill mid-write leaves the previous file (or nothing) at
the target; the temporary left behind is removed by the next write in that directory once its
writer is dead (``remove_stale_temporaries``).
"""
from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_TEMPORARY = re.compile(r"^\..+\.(?P<pid>\d+)\.tmp$")
"""``.<name>.<pid>.tmp``: a temporary file or directory of ``atomic_file`` / ``atomic_directory``."""


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Remove the temporaries in ``directory`` whose writing process is gone; returns what was removed."""
    removed = []
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return removed
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match is None or int(match["pid"]) == os.getpid() or _alive(int(match["pid"])):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def fsync_directory(directory: Path) -> None:
    """Make renames inside ``directory`` durable (a power cut could otherwise lose them)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for directory, _, files in os.walk(root):
        for name in files:
            with open(Path(directory) / name, "rb") as handle:
                os.fsync(handle.fileno())
        fsync_directory(Path(directory))


@contextmanager
def atomic_file(path: str | Path) -> Iterator[BinaryIO]:
    """Write ``path`` through the yielded binary file; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    temporary = _temporary(path)
    try:
        with open(temporary, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_directory(path.parent)


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Fill the yielded directory (named like ``path``, inside a temporary one); it becomes ``path`` only if
    the block succeeds. An existing ``path`` is never replaced: FileExistsError, before and after."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists already; not overwriting it")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    staging = _temporary(path)
    staging.mkdir()
    try:
        inside = staging / path.name  # a rosbag2's storage file is named after its directory
        yield inside
        _fsync_tree(inside)
        if path.exists():
            raise FileExistsError(f"{path} appeared meanwhile; not overwriting it")
        os.rename(inside, path)
        fsync_directory(path.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """``path`` holds ``text`` (UTF-8), written atomically."""
    with atomic_file(path) as handle:
        handle.write(text.encode())
