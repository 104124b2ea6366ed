#!/usr/bin/env python3
"""Checkpointed alignment benchmark (align --checkpoint), on the shared data set's read pairs
with duplicates marked, through the CLI, in one sitting:

- what checkpoints cost an uninterrupted run: `align` alone against `align --checkpoint DIR
  --checkpoint-pairs P`, runs alternated (min and max wall of each);
- what they save: a checkpointed run is stopped with SIGTERM once a checkpoint holds at least
  half the pairs, and the same command run again goes on from it; its wall time is set beside
  a run from the start. The resumed BAM's records must equal the uninterrupted run's.

Run with gmsaccel importable:
  PYTHONPATH=src python3 benchmarks/bench_checkpoint.py --threads 2 --repeats 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pysam
from bench_align import bench_setup, machine_info


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", "-t", type=int, default=2, help="threads (2)")
    p.add_argument("--data", help="the kp/ data directory (default: the prepare.sh cache)")
    p.add_argument("--reads", nargs=2, metavar=("R1", "R2"),
                   help="other pairs (default: DATA/reads_1.fq.gz DATA/reads_2.fq.gz)")
    p.add_argument("--index", help="a saved .gxi of DATA/ref.fa (default: built in the workdir)")
    p.add_argument("--checkpoint-pairs", type=int, default=100_000,
                   help="pairs between checkpoints (100000: 5 in the 500,000 pairs)")
    p.add_argument("--repeats", type=int, default=3, help="alternated runs of each (3)")
    p.add_argument("--workdir", help="where BAMs go (default: a temporary directory)")
    p.add_argument("--out", help="write the results as JSON to this file")
    return p.parse_args(argv)


def records_md5(bam: Path) -> str:
    h = hashlib.md5()
    with pysam.AlignmentFile(str(bam), check_sq=False) as f:
        for r in f.fetch(until_eof=True):
            h.update(r.to_string().encode())
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from gmsaccel.checkpoint import MANIFEST

    _, r1, r2, work, index = bench_setup(args.data, args.workdir, args.index,
                                         "bench_checkpoint-", args.reads)
    folder = work / "ck"
    base = [sys.executable, "-m", "gmsaccel", "align", str(index), str(r1), str(r2),
            "-t", str(args.threads), "--mark-duplicates", "-q"]
    checkpointed = ["--checkpoint", str(folder), "--checkpoint-pairs", str(args.checkpoint_pairs)]

    def run(out: Path, extra: list[str]) -> float:
        t = time.perf_counter()
        subprocess.run([*base, "-o", str(out), *extra], check=True)
        return time.perf_counter() - t

    walls: dict[str, list[float]] = {"plain": [], "checkpointed": []}
    for _ in range(args.repeats):
        walls["plain"].append(run(work / "plain.bam", []))
        walls["checkpointed"].append(run(work / "ck.bam", checkpointed))
    same = records_md5(work / "plain.bam") == records_md5(work / "ck.bam")

    # Stopped once a checkpoint holds half the pairs, then run again.
    total_pairs = sum(1 for _ in pysam.FastxFile(str(r1)))
    shutil.rmtree(folder, ignore_errors=True)
    proc = subprocess.Popen([*base, "-o", str(work / "cut.bam"), *checkpointed])
    manifest = folder / MANIFEST
    stopped_at = 0
    while proc.poll() is None:
        try:
            stopped_at = json.loads(manifest.read_text())["pairs"]
        except (OSError, ValueError, KeyError):
            stopped_at = 0
        if stopped_at >= total_pairs // 2:
            proc.send_signal(signal.SIGTERM)
            break
        time.sleep(0.01)
    rc = proc.wait()
    kept_pairs = json.loads(manifest.read_text())["pairs"] if manifest.exists() else 0
    resume_wall = run(work / "cut.bam", checkpointed)
    resumed_same = records_md5(work / "cut.bam") == records_md5(work / "plain.bam")

    result = {
        "machine": machine_info(None), "threads": args.threads, "pairs": total_pairs,
        "checkpoint_pairs": args.checkpoint_pairs, "walls": walls,
        "records_identical": same, "stopped_rc": rc, "kept_pairs": kept_pairs,
        "resume_wall": resume_wall, "resumed_records_identical": resumed_same,
    }
    print(f"{total_pairs:,} pairs, {args.threads} threads, checkpoints every "
          f"{args.checkpoint_pairs:,} pairs, {args.repeats} alternated runs")
    print("| run | wall s (min-max) |\n|---|---:|")
    for k, v in walls.items():
        print(f"| {k} | {min(v):.2f}-{max(v):.2f} |")
    print(f"| stopped (exit {rc}) with {kept_pairs:,} pairs in its checkpoint, then run again "
          f"| {resume_wall:.2f} |")
    print(f"records identical: checkpointed {same}, resumed {resumed_same}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if same and resumed_same else 1


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.exit(main())
