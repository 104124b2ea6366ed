"""Small outputs written whole: under a temporary name beside the final one, renamed into place,
so that nothing partial ever appears at the final path (and no temporary is left behind)."""

from __future__ import annotations

import os
from pathlib import Path


def write_text_atomically(path: str | os.PathLike, text: str) -> Path:
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:  # (a signal, a full disk: no temporary left)
        tmp.unlink(missing_ok=True)
        raise
    return path
