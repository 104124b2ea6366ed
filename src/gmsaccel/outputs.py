"""Small outputs written whole: under a temporary name beside the final one, renamed into place,
so that nothing partial ever appears at the final path (and no temporary is left behind)."""

from __future__ import annotations

import os
from pathlib import Path


def write_text_atomically(path: str | os.PathLike, text: str, durable: bool = False) -> Path:
    """durable: synced to disk (the text, then the folder's new name), so that after a power
    loss the path holds either the old text or the new."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # (a signal, a full disk: no temporary left)
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        sync_folder(path.parent)
    return path


def sync_folder(folder: str | os.PathLike) -> None:
    """Syncs a folder's entries (names made, renamed or removed in it) to disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
