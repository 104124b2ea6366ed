"""Stage stamps for ``gmsaccel run --resume``.

A run's stages (alignment, then calling) each record, once their outputs are in place, what
they read (paths, sizes and modification times), how (the options that shape their output,
and the version), what they wrote (the same for each output) and their statistics. A rerun with
``--resume`` after a failure, a cancel or a scheduler's time limit reuses a stage's outputs when
all of that still holds, and otherwise runs it again, saying why. Threads, device and Dask are
not recorded: they do not change the records.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gmsaccel.outputs import write_text_atomically

STAMP_FORMAT = 1


def file_identity(path: str | os.PathLike[str] | None,
                  within: Path | None = None) -> dict[str, Any] | None:
    """What identifies a file's contents cheaply: its resolved path (relative to within, for a
    run's own outputs, so that a moved OUTDIR, or one copied with its times (cp -a), still
    resumes), size and mtime (ns)."""
    if path is None:
        return None
    p = Path(path)
    st = p.stat()
    name = str(p.resolve().relative_to(within.resolve()) if within else p.resolve())
    return {"path": name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _holds_files(v: Any) -> bool:
    """Whether v is a file's identity, a list of them, or a dict naming some."""
    if isinstance(v, list):
        return any(_holds_files(x) for x in v)
    return isinstance(v, dict)


def _first_difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict) and "mtime_ns" not in a:
            return _first_difference(a, b)  # options: name the option
        if isinstance(b, list) and len(b) > 1 and _holds_files(b):  # (a sample's lanes)
            return f"{key} are not the files they were"
        if _holds_files(a) or _holds_files(b):
            return f"{key} is not the file it was"
        return f"{key} was {a!r}, now {b!r}"
    return "nothing"  # (not reached: callers compare first)


class RunStamp:
    """The finished stages of one sample's run in OUTDIR (a JSON file beside its outputs)."""

    def __init__(self, path: Path, stages: dict[str, dict[str, Any]] | None = None) -> None:
        self.path = path
        self.stages: dict[str, dict[str, Any]] = stages or {}

    @classmethod
    def load(cls, path: Path) -> tuple[RunStamp, str | None]:
        """The stamp at path, and why it cannot be used when it cannot (missing, unreadable or
        from another format): then an empty stamp, and every stage runs."""
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(path), "no earlier run recorded there"
        except (OSError, ValueError) as e:
            return cls(path), f"its record {path} is unreadable ({e})"
        if not isinstance(data, dict) or data.get("format") != STAMP_FORMAT or \
                not isinstance(data.get("stages"), dict):
            return cls(path), f"its record {path} is not one this version reads"
        return cls(path, data["stages"]), None

    def save(self) -> None:
        write_text_atomically(self.path, json.dumps({"format": STAMP_FORMAT,
                                                     "stages": self.stages}, indent=1) + "\n")

    def reusable(self, stage: str, inputs: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        """The stage's recorded results when it finished from these inputs and its outputs are
        still as it left them; otherwise None and why it must run again."""
        done = self.stages.get(stage)
        if done is None:
            return None, "it did not finish"
        if done.get("inputs") != inputs:
            return None, _first_difference(done.get("inputs", {}), inputs)
        for out in done.get("outputs", []):
            path = self.path.parent / out["path"]
            try:
                now = file_identity(path, self.path.parent)
            except OSError:
                return None, f"its output {path} is gone"
            if now != out:
                return None, f"its output {path} has changed"
        return done.get("results", {}), ""

    def forget(self, *stages: str) -> None:
        """Before a stage runs: it and the stages after it no longer count as finished."""
        if any(self.stages.pop(s, None) is not None for s in stages):
            self.save()

    def finish(self, stage: str, inputs: dict[str, Any], outputs: Iterable[Path],
               results: dict[str, Any]) -> None:
        self.stages[stage] = {"inputs": inputs,
                              "outputs": [file_identity(p, self.path.parent)
                                          for p in outputs if p.exists()],
                              "results": results}
        self.save()

    def outputs(self) -> list[Path]:
        """Every finished stage's outputs."""
        return [self.path.parent / o["path"] for s in self.stages.values()
                for o in s.get("outputs", [])]
