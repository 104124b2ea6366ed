"""Alignment scaled out over an executor (a dask.distributed Client, or any concurrent.futures
executor): the reads are cut into shards of consecutive pairs, each shard is aligned where the
executor runs it into a sorted part BAM, and the parts are merged here into the one sorted,
indexed BAM, duplicates marked on the merge.

The BAM is the same, record for record, as one process aligning the whole input writes:
- every pair is aligned with the insert-size model of the input's leading pairs (the first
  shard holds them; its model is handed to the others);
- the parts are consecutive stretches of the input, so merging them with ties in part order
  keeps the order of arrival a single sorted writer keeps;
- duplicates are marked only on the merge, where all of a set's copies meet (parts carry each
  pair's ms tag for it).

Workers open the index by the path the driver names, and write their parts into a folder the
driver reads (beside the output unless tmp_dir says otherwise), so on a cluster both must be on
storage every node sees, as for calling. The reads themselves travel with the tasks."""

from __future__ import annotations

import copy
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gmsaccel import _core
from gmsaccel.checkpoint import PART_PREFIX, AlignCheckpoint, add_stats, engine_id
from gmsaccel.resume import file_identity
from gmsaccel.scaleout import Executor, Resolved, executor_slots, ordered_submit

DEFAULT_SHARD_PAIRS = 50_000
# A checkpoint's manifest is written at most this often (and after the leading part, and when
# the parts are all in): it lists every part, and each write is synced.
RECORD_SECONDS = 5.0

# Aligners made by _align_shard, one per spec and process.
_worker_aligners: dict[tuple, Any] = {}
_worker_lock = threading.Lock()


def _aligner_for(spec: tuple):  # -> gmsaccel.align.Aligner
    from gmsaccel.align import Aligner

    with _worker_lock:
        aligner = _worker_aligners.get(spec)
        if aligner is None:
            reference, device, simd, min_score, model_pairs = spec
            aligner = Aligner(reference, threads=1, device=device, simd=simd or None,
                              min_score=min_score, insert_model_pairs=model_pairs)
            _worker_aligners[spec] = aligner
    return aligner


def _align_shard(spec: tuple, r1_text: bytes, r2_text: bytes | None, part: str, header: str,
                 options: dict[str, Any]) -> dict:
    """One shard where the executor runs it: its reads go to a scratch FASTQ on the worker's
    own disk, and come back as the sorted part BAM at `part`; returns the run's statistics."""
    aligner = _aligner_for(spec)
    options = dict(options)
    lane, first_record = options.pop("shard_key")
    options_checked = options.pop("checksum", False)
    with tempfile.TemporaryDirectory(prefix="gmsaccel-shard-") as scratch:
        r1 = os.path.join(scratch, "r1.fq")
        Path(r1).write_bytes(r1_text)
        r2 = ""
        if r2_text is not None:
            r2 = os.path.join(scratch, "r2.fq")
            Path(r2).write_bytes(r2_text)
        stats = aligner._core.align_fastq(
            [r1], [r2] if r2 else [], part, header, sort=True, format="bam", write_index=False,
            compression_level=1, mark_duplicates=False, **options)
    # (a checkpoint's part: on disk for good, and its bytes' checksum to tell it by later)
    if options_checked:
        stats["checksum"] = _core.file_checksum(part, sync=True)
        stats["engine"] = engine_id()
    stats.update(part=part, lane=lane, first_record=first_record)
    return stats


def _shards(r1s: list[str], r2s: list[str] | None, first: int, size: int,
            clock: dict[str, float], interleaved: bool = False
            ) -> Iterator[tuple[int, int, bytes, bytes | None]]:
    """(file, first record number, R1 text, R2 text) of each shard: `first` pairs, then
    `size`, the files one after the other (a shard never spans two, as a local run's batch
    never does); the seconds spent reading and cutting are added to clock["cut"]. interleaved:
    r1s hold the pairs, and each shard's are split into R1 and R2 text (the record number is
    the r1 file's)."""
    want = first
    for i, r1 in enumerate(r1s):
        with _core.FastqReader(r1) as f1:
            f2 = _core.FastqReader(r2s[i]) if r2s else None
            try:
                while True:
                    t = time.perf_counter()
                    t1, t2, n, first_record = _core.read_fastq_shard(f1, f2, want, interleaved)
                    clock["cut"] += time.perf_counter() - t
                    if n == 0:
                        break
                    yield i, first_record, t1, t2
                    want = size
            finally:
                if f2 is not None:
                    f2.close()


def align_fastq_sharded(aligner, r1: list[str], r2: list[str] | None, out: str, header: str, *,
                        executor: Executor, shard_pairs: int = DEFAULT_SHARD_PAIRS,
                        shard_threads: int = 1, read_groups: list[str] | None = None,
                        batch_reads: int = 10000,
                        memory_bytes: int = 64 << 20, compression_level: int = -1,
                        output_format: str = "bam", threads: int = 1,
                        mark_duplicates: bool = False, copy_comments: bool = False,
                        tmp_dir: str | None = None, cram_reference: str = "",
                        interleaved: bool = False, insert_model: dict | None = None,
                        progress: Callable[[int], None] | None = None,
                        checkpoint: AlignCheckpoint | None = None) -> dict:
    """Aligns r1's files (and r2's, their mates) on the executor and writes the merged, sorted
    BAM to out; returns the statistics align_fastq returns, summed over the shards, with
    "shards" added. insert_model: the pairs' model, known beforehand (else the leading shard's).
    checkpoint: the parts go to its folder (which the workers must see) and are recorded there
    as they finish, in input order; a run given a checkpoint of the same input, shards and
    options reuses the parts it lists ("resumed_shards" in the statistics) and aligns the rest.
    The caller removes the checkpoint once the output is complete."""
    if shard_pairs < 1:
        raise ValueError("shard_pairs must be at least 1")
    start = time.perf_counter()
    reference = aligner.index.path or aligner.index.built_from
    if not reference:
        raise ValueError("sharded alignment needs an index or FASTA on disk for the workers")
    spec = (os.path.abspath(reference), aligner.requested_device, aligner.requested_simd,
            aligner.min_score, aligner._core.insert_model_pairs)
    options = {"threads": max(1, int(shard_threads)), "batch_reads": batch_reads,
               "memory_bytes": memory_bytes,
               "mate_scores": mark_duplicates, "copy_comments": copy_comments,
               "from_interleaved": interleaved}
    paired = bool(r2) or interleaved
    # Somewhere the workers see too, as they see the output's folder (not the driver's /tmp).
    where = tmp_dir or (os.getcwd() if out == "-" else os.path.dirname(os.path.abspath(out)))
    if checkpoint is not None:
        parts_dir = str(checkpoint.folder.resolve())
        state = checkpoint.resume()
    else:
        parts_dir = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.parts-", dir=where)
        state = None
    # (lane, first record) -> what an earlier run recorded of that shard's finished part
    earlier = {(p["lane"], p["first_record"]): p for p in state["parts"]} if state else {}
    finished: list[dict[str, Any]] = []  # parts recorded in the checkpoint, in input order
    # Statistics: the earlier run's (its parts' summed), then this run's parts' added.
    stats: dict[str, Any] = copy.deepcopy(state["stats"]) if state else {}
    if state and state.get("insert_model"):
        stats["insert_model"] = state["insert_model"]
    parts: list[tuple[str, int]] = []
    # New parts' names carry this attempt's token: a task of an earlier attempt that runs on
    # after its driver died can never write over a part this one records.
    token = secrets.token_hex(4)
    last_record = [0.0]
    # Wall seconds of the driver's own work: cutting shards (reading and checking the FASTQ),
    # waiting for the leading shard alone, and merging the parts (and marking duplicates).
    clock = {"cut": 0.0, "leading_shard": 0.0, "merge": 0.0}

    # A Dask client is handed the reads as data on a worker, not inside the task itself (which
    # the scheduler would relay, warning of a large graph).
    scatter = getattr(executor, "scatter", None)

    groups = read_groups or []

    def tasks(shards: Iterator[tuple], model: dict | None) -> Iterator[tuple | Resolved]:
        for i, first_record, t1, t2 in shards:
            done = earlier.get((i, first_record))
            if done is not None:  # (an earlier run's part, its statistics in the totals)
                yield Resolved({"reused": done})
                continue
            part = os.path.join(parts_dir,
                                f"{PART_PREFIX}{token}-{i:04d}-{first_record:012d}.bam")
            # (messages about a read name its own file and record; its lane's read group)
            opts = dict(options, records_before=first_record - 1, r1_name=r1[i],
                        read_groups=groups[i:i + 1] if len(groups) > 1 else groups,
                        r2_name=r2[i] if r2 else (r1[i] if interleaved else ""))
            if model is not None:
                opts["insert_model"] = model
            opts["shard_key"] = (i, first_record)
            opts["checksum"] = checkpoint is not None
            if scatter is not None:
                t1, t2 = scatter([t1, t2], hash=False)
            yield spec, t1, t2, part, header, opts

    def collect(part_stats: dict) -> None:
        if "reused" in part_stats:  # (validated when the checkpoint was read)
            done = part_stats["reused"]
            parts.append((done["path"], done["duplicate_reach"]))
            finished.append({k: v for k, v in done.items() if k != "path"})
        else:
            path = part_stats.pop("part")
            lane, first_record = part_stats.pop("lane"), part_stats.pop("first_record")
            checksum = part_stats.pop("checksum", None)
            engine = part_stats.pop("engine", None)
            if checkpoint is not None and engine != checkpoint.identity.get("worker_engine"):
                raise _core.InputError(
                    f"{path}: written by another gmsaccel build ({engine}) than the workers' "
                    f"({checkpoint.identity.get('worker_engine')}): a checkpoint's parts must "
                    "all come from one build; give every worker the same one")
            parts.append((path, part_stats["duplicate_reach"]))
            stats.setdefault("insert_model", part_stats.get("insert_model"))  # the first's
            add_stats(stats, part_stats)
            if checkpoint is not None:
                finished.append({"name": os.path.basename(path), "lane": lane,
                                 "first_record": first_record,
                                 "duplicate_reach": part_stats["duplicate_reach"],
                                 "file": file_identity(path, checkpoint.folder),
                                 "checksum": checksum})
        # Recorded at most every few seconds (and after the leading part): each record
        # writes and syncs the whole manifest, which grows with the parts.
        now = time.monotonic()
        if checkpoint is not None and (len(finished) == 1 or
                                       now - last_record[0] >= RECORD_SECONDS):
            record()
            last_record[0] = now
        if progress:
            progress(stats.get("reads", 0))

    def record() -> None:
        totals = {k: v for k, v in stats.items()
                  if k not in ("insert_model", "duplicate_reach", "seconds", "close_seconds")}
        checkpoint.record_parts(finished, totals, stats.get("insert_model"), paired)

    try:
        # Pairs: the shard of the leading pairs goes first, alone, and its insert-size model is
        # every other shard's.
        known = insert_model is not None
        leading = aligner._core.insert_model_pairs if paired and not known else shard_pairs
        shards = _shards(r1, r2, leading, shard_pairs, clock, interleaved)
        model = insert_model
        if paired and not known and state and state.get("insert_model"):
            known, model = True, state["insert_model"]  # (the leading shard is recorded)
        if paired and not known:
            t = time.perf_counter()
            first = next(tasks(shards, None), None)
            if first is not None:
                collect(executor.submit(_align_shard, *first).result())
                model = stats["insert_model"]
            clock["leading_shard"] = time.perf_counter() - t
        for part_stats in ordered_submit(executor, _align_shard, tasks(shards, model),
                                         executor_slots(executor) + 1, drain=True):
            collect(part_stats)
        if checkpoint is not None and finished:
            record()  # (every part: a failure in the merge keeps them all)
        t = time.perf_counter()
        writer = _core.BamWriter(out, header, sort=True, format=output_format, threads=threads,
                                 memory_bytes=memory_bytes, tmp_dir=tmp_dir or "",
                                 write_index=out != "-" and output_format in ("bam", "cram"),
                                 compression_level=compression_level,
                                 mark_duplicates=mark_duplicates, reference=cram_reference)
        try:
            for path, reach in parts:
                writer.add_sorted_part(path, reach)
            writer.close()
        except BaseException:
            writer.abort()
            raise
        clock["merge"] = time.perf_counter() - t
    finally:
        if checkpoint is None:
            shutil.rmtree(parts_dir, ignore_errors=True)
    if mark_duplicates:
        stats["duplicates"] = writer.duplicate_stats
    stats.setdefault("reads", 0)
    stats.setdefault("insert_model", None)
    stats["duplicate_reach"] = max((reach for _, reach in parts), default=0)
    stats["shards"] = len(parts)
    if checkpoint is not None:
        stats["resumed_shards"] = len(earlier)
    stats["driver_seconds"] = clock
    stats["seconds"] = time.perf_counter() - start
    return stats
