"""write_text_atomically: the final path holds the old text or the new, never a part of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gmsaccel.outputs import write_text_atomically


@pytest.mark.parametrize("durable", [False, True])
def test_writes_and_replaces_leaving_no_temporary(tmp_path: Path, durable: bool) -> None:
    path = tmp_path / "m.json"
    assert write_text_atomically(path, "one\n", durable) == path
    write_text_atomically(path, "two\n", durable)
    assert path.read_text() == "two\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


@pytest.mark.parametrize("durable", [False, True])
def test_a_failed_write_keeps_the_old_text_and_no_temporary(tmp_path: Path,
                                                            durable: bool) -> None:
    path = tmp_path / "m.json"
    write_text_atomically(path, "old\n")
    with pytest.raises(UnicodeEncodeError):
        write_text_atomically(path, "new \udc80\n", durable)  # (a lone surrogate: no UTF-8 for it)
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]
