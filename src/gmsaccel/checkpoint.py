"""Checkpoints within one alignment (``align --checkpoint DIR``; ``run --resume``).

A whole-genome alignment runs for hours, and a scheduler's time limit, a preempted node or a
cancel ends it where it is. With a checkpoint folder, every so many pairs the sorted records
so far are made durable there: the BAM writer's own sorted spill files, each synced to disk
with an index of sampled keys and a checksum beside it, and ``gmsaccel-checkpoint.json``,
written atomically (and synced) after them, which records the pairs they hold, the statistics
so far, the insert-size model, and what made the records (reads files' paths, sizes and mtimes,
the index, the options that shape records, the engine and version).

Run again with the same folder, the alignment reads and passes over the pairs a checkpoint
holds (inflating and parsing them, not aligning), aligns the rest with the recorded model, and
its final merge takes the earlier spills first: the BAM holds the records one uninterrupted
run writes, with duplicates marked over all of them. When anything recorded differs, the folder
is emptied and the alignment starts over, saying why. The folder goes once the output is
complete. A lock keeps two runs out of one folder.
"""

from __future__ import annotations

import copy
import fcntl
import functools
import hashlib
import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gmsaccel import _core
from gmsaccel.outputs import sync_folder, write_text_atomically
from gmsaccel.resume import _first_difference, file_identity

# Names no user file is likely to have: only files named so (and the writer's spills) are
# ever removed from the folder.
MANIFEST = "gmsaccel-checkpoint.json"
LOCK = "gmsaccel-checkpoint.lock"
FORMAT = 2
# About 5 minutes of a 2-core machine's alignment of a human genome, under a minute on a large
# node; each checkpoint spills the sort buffer and syncs what was spilled since the last.
DEFAULT_CHECKPOINT_PAIRS = 4_000_000


@functools.lru_cache(maxsize=1)
def engine_id() -> str:
    """The build of the engine where this runs (a digest of the compiled extension's bytes):
    the same build on every node, whatever its path. A checkpoint's records must all come from
    one."""
    return hashlib.sha256(Path(_core.__file__).read_bytes()).hexdigest()[:16]


def add_stats(total: dict, part: dict) -> None:
    """Adds one run's (or shard's) alignment statistics into total: counts summed, per-contig
    counts contig by contig; the model, reach and seconds are left to the caller."""
    for key, value in part.items():
        if key in ("insert_model", "duplicate_reach", "seconds"):
            continue
        if isinstance(value, dict):
            add_stats(total.setdefault(key, {}), value)
        elif isinstance(value, list):  # per-contig counts, summed contig by contig
            have = total.setdefault(key, [])
            have.extend([0] * (len(value) - len(have)))
            for i, v in enumerate(value):
                have[i] += v
        else:
            total[key] = total.get(key, 0) + value


PART_PREFIX = "gmsaccel-part-"  # a sharded run's part BAMs (align_shards.py)


def _ours(name: str) -> bool:
    """Whether a file in a checkpoint folder is one a checkpoint writes: the manifest (or its
    temporary), the lock, the BAM writer's spills and their index files, or a sharded run's
    parts (and their writers' temporaries)."""
    return name in (MANIFEST, LOCK) or name.startswith((MANIFEST + ".tmp-", PART_PREFIX)) or \
        (".spill." in name and name.endswith((".run", ".run.idx", ".run.idx.tmp")))


def _listed_files(data: dict[str, Any]) -> list[str]:
    """The files a manifest lists: a sharded run's parts, or the spills and their indexes."""
    if "parts" in data:
        return [p["name"] for p in data["parts"]]
    return [f for n in data["spills"] for f in (n, n + ".idx")]


class AlignCheckpoint:
    """One alignment's checkpoint folder, locked while open."""

    def __init__(self, folder: str | os.PathLike[str], identity: dict[str, Any],
                 log: Callable[[str], None] | None = None, output: str | None = None) -> None:
        """output: the final path the run writes, whose temporaries an attempt cut short by
        SIGKILL leaves beside it (OUTPUT.tmp-PID and its index's): recorded, and removed
        by the next attempt."""
        self.folder = Path(folder)
        self.identity = identity
        self.log = log or (lambda _msg: None)
        self.output = output
        if self.folder.exists() and not self.folder.is_dir():
            raise _core.InputError(f"{self.folder}: not a directory (the checkpoint folder)")
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            self._lock = open(self.folder / LOCK, "a")  # noqa: SIM115 (held until close)
        except OSError as e:
            raise _core.InputError(f"{self.folder / LOCK}: cannot open as the checkpoint's lock "
                                   f"file ({e.strerror})") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            raise _core.InputError(f"{self.folder}: another alignment is using this checkpoint "
                                   "folder") from None
        # What the run goes on from: the earlier statistics, and the checkpoint's state.
        self.base: dict[str, Any] | None = None
        self._earlier_temporaries: list[str] = []

    def close(self) -> None:
        """Releases the folder, leaving what it holds (for a later run)."""
        if not self._lock.closed:
            self._lock.close()

    def __enter__(self) -> AlignCheckpoint:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        """A failure abandons the run (abandon: a recorded checkpoint stays); else the folder
        is released as it is (finish() removes a checkpoint the output no longer needs)."""
        if exc_type is not None:
            self.abandon()
        else:
            self.close()

    def resume(self) -> dict[str, Any] | None:
        """The recorded checkpoint when this run can go on from it (its spills' full paths in
        "spills"), after removing what a killed run left beyond it; else None, the folder
        emptied (the reason logged when there was a checkpoint)."""
        state, why = self._usable()
        for tmp in self._earlier_temporaries:  # (an earlier attempt's, killed while writing)
            Path(tmp).unlink(missing_ok=True)
        if state is None:
            if why:
                self.log(f"checkpoint in {self.folder} not used: {why}; aligning from the start")
            self._clear(keep=set())
            return None
        self._clear(keep=set(_listed_files(state)) | {MANIFEST})
        if "parts" in state:
            state = dict(state, parts=[dict(p, path=str(self.folder / p["name"]))
                                       for p in state["parts"]])
        else:
            state = dict(state, spills=[str(self.folder / n) for n in state["spills"]])
        self.base = state
        self.log(f"going on from the checkpoint in {self.folder}: {state['pairs']:,} "
                 f"{'pairs' if state['paired'] else 'reads'} aligned before")
        return state

    def _usable(self) -> tuple[dict[str, Any] | None, str]:
        path = self.folder / MANIFEST
        data, why = _read_manifest(path)
        if data is None:
            return None, why
        self._earlier_temporaries = [t for t in data.get("temporaries", [])
                                     if isinstance(t, str) and ".tmp-" in t]
        if data.get("identity") != self.identity:
            return None, _first_difference(data.get("identity", {}), self.identity)
        try:
            if "parts" in data:  # a sharded run's: finished parts, as they were written
                if data["parts"] and data.get("paired") and not data.get("insert_model"):
                    return None, f"{path} is damaged (parts without the model)"
                for part in data["parts"]:
                    name = part["name"]
                    if not isinstance(name, str) or "/" in name or \
                            not name.startswith(PART_PREFIX):
                        return None, f"{path} is damaged (a part named {name!r})"
                    try:
                        now = file_identity(self.folder / name, self.folder)
                    except OSError:
                        return None, f"its part {self.folder / name} is gone"
                    if now != part["file"]:
                        return None, f"its part {self.folder / name} has changed"
                    if _core.file_checksum(str(self.folder / name)) != part["checksum"]:
                        return None, f"its part {self.folder / name} is damaged"
                    int(part["duplicate_reach"]), int(part["lane"]), int(part["first_record"])
                int(data["pairs"]), dict(data["stats"])
                return data, ""
            records = 0
            for name in data["spills"]:
                if not isinstance(name, str) or "/" in name:
                    return None, f"{path} is damaged (a spill named {name!r})"
                records += _core.checked_spill_records(str(self.folder / name))
            if records != data["records"]:
                return None, f"its spills hold {records:,} records, not {data['records']:,}"
            int(data["pairs"]), dict(data["stats"]), int(data["duplicate_reach"])
        except _core.InputError as e:
            return None, str(e)
        except (KeyError, TypeError, ValueError) as e:
            return None, f"{path} is damaged ({type(e).__name__}: {e})"
        return data, ""

    def _clear(self, keep: set[str]) -> None:
        """Removes this module's and the writer's files but those in keep (and the lock);
        anything else in the folder is not ours and stays."""
        for p in self.folder.iterdir():
            if p.name not in keep and p.name != LOCK and _ours(p.name) and not p.is_dir():
                p.unlink(missing_ok=True)

    def record(self, cp: dict[str, Any], paired: bool) -> None:
        """Records a checkpoint the pipeline made (its spills synced, their indexes written):
        from then on, a later run goes on from it. Statistics add to the earlier runs'."""
        stats = copy.deepcopy(self.base["stats"]) if self.base else {}
        add_stats(stats, cp["stats"])
        self._write({"pairs": cp["pairs"], "paired": paired, "records": cp["records"],
                     "duplicate_reach": cp["duplicate_reach"],
                     "insert_model": cp["insert_model"],
                     "spills": [os.path.relpath(s, self.folder) for s in cp["spills"]],
                     "stats": stats})

    def record_parts(self, parts: list[dict[str, Any]], totals: dict[str, Any],
                     model: dict[str, Any] | None, paired: bool) -> None:
        """Records a sharded run's finished parts (in input order: each a dict of name, lane,
        first_record, duplicate_reach, reads, file (size and mtime) and checksum) with their
        statistics summed (totals) and the model, for a later run to reuse. The manifest grows
        by a hundred bytes a part, not by a part's statistics."""
        reads = totals.get("reads", 0)
        self._write({"pairs": reads // 2 if paired else reads, "paired": paired,
                     "insert_model": model, "parts": parts, "stats": totals})

    def _write(self, state: dict[str, Any]) -> None:
        """Writes the manifest (durably, checksummed): state, with the format, identity and
        the output temporaries attempts may leave (the writer's own, bam_writer.cpp:
        OUTPUT.tmp-PID and its index's)."""
        temporaries = list(self._earlier_temporaries)
        if self.output:
            tmp = f"{self.output}.tmp-{os.getpid()}"
            temporaries += [tmp] + [tmp + ext for ext in (".bai", ".csi", ".crai")]
        state = {"format": FORMAT, "identity": self.identity, **state,
                 "temporaries": temporaries}
        state["checksum"] = _manifest_checksum(state)
        write_text_atomically(self.folder / MANIFEST, json.dumps(state) + "\n", durable=True)

    def finish(self) -> None:
        """The output is complete: the checkpoint goes (the manifest first, so that no
        manifest ever lists a missing spill), and the folder when that leaves it empty.
        SIGINT and SIGTERM wait till it is done (handlers run in the main thread, whichever
        thread the signal reaches), and are raised then."""
        caught: list[int] = []
        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                handler = signal.getsignal(sig)
                if handler is not signal.SIG_IGN and handler is not None:
                    previous[sig] = handler
                    signal.signal(sig, lambda s, _frame: caught.append(s))
        try:
            manifest = self.folder / MANIFEST
            if manifest.exists():
                manifest.unlink()
                sync_folder(self.folder)
            self._drop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if caught:
                signal.raise_signal(caught[0])

    def abandon(self) -> None:
        """The run failed: a recorded checkpoint stays for the next; without one, nothing of
        the folder does (the writer has removed its spills)."""
        if (self.folder / MANIFEST).exists():
            self.close()
        else:
            self._drop()

    def _drop(self) -> None:
        self._clear(keep=set())
        (self.folder / LOCK).unlink(missing_ok=True)
        self.close()
        try:
            self.folder.rmdir()
        except OSError:  # (someone else's files in it)
            pass


def _read_manifest(path: Path) -> tuple[dict[str, Any] | None, str]:
    """A manifest of this format whose checksum holds, or None and why not ("" when there is
    none)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None, ""
    except (OSError, ValueError) as e:
        return None, f"{path} is unreadable ({e})"
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None, f"{path} is not one this version reads"
    if data.get("checksum") != _manifest_checksum(data):
        return None, f"{path} is damaged (checksum)"
    return data, ""


def _manifest_checksum(state: dict[str, Any]) -> str:
    body = json.dumps({k: v for k, v in state.items() if k != "checksum"}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def kept_checkpoint(folder: str | os.PathLike[str]) -> int | None:
    """The pairs a checkpoint in folder holds, when one is there whose files all are (for
    messages after a failure); else None."""
    data, _ = _read_manifest(Path(folder) / MANIFEST)
    try:
        if data and all((Path(folder) / n).is_file() for n in _listed_files(data)):
            return int(data["pairs"])
    except (KeyError, TypeError, ValueError):
        pass
    return None


def drop_checkpoint(folder: str | os.PathLike[str]) -> None:
    """Removes a checkpoint no run will go on from: its files, and the folder when that
    leaves it empty (InputError while a run holds it)."""
    ck = AlignCheckpoint(folder, {})
    ck.finish()
