#!/usr/bin/env python3
"""Sharded alignment benchmark: the shared data set's read pairs aligned (duplicates marked) by
one process with T threads, and in shards on a Dask LocalCluster of W single-thread workers,
in one sitting, runs alternated.

On one machine sharding cannot beat the threaded aligner (the same cores, plus the shards'
traffic); what it measures is the cost of the scale-out path per read, and where it goes:
- cut: the driver reading the FASTQ and cutting it into shards (text for the workers);
- leading shard: the first shard alone (its insert-size model is every other shard's);
- merge: the driver merging the sorted parts into the BAM, marking duplicates on the way;
- the rest: the workers aligning (scratch FASTQ in, level-1 part BAM out) and Dask's traffic.
It also checks that the sharded BAM equals the local one byte for byte.

Run with gmsaccel importable (PYTHONPATH=src) and dask.distributed installed:
  PYTHONPATH=src python3 benchmarks/bench_align_shards.py --threads 2 --repeats 3
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import sys
import time
from pathlib import Path

from bench_align import bench_setup, machine_info


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", "-t", type=int, default=2,
                   help="threads of the local run, and Dask workers (1 thread each) (2)")
    p.add_argument("--data", help="the kp/ data directory (default: the prepare.sh cache)")
    p.add_argument("--index", help="a saved .gxi of DATA/ref.fa (default: built in the workdir)")
    p.add_argument("--shard-pairs", type=int, default=50_000, help="pairs per shard (50000)")
    p.add_argument("--repeats", type=int, default=1, help="runs of each; min wall (1)")
    p.add_argument("--workdir", help="where BAMs go (default: a temporary directory)")
    p.add_argument("--out", help="write the results as JSON to this file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from distributed import Client, LocalCluster

    from gmsaccel.align import Aligner

    _, r1, r2, work, index = bench_setup(args.data, args.workdir, args.index,
                                         "bench_align_shards-")
    aligner = Aligner(index, threads=args.threads)
    local_bam, sharded_bam = work / "local.bam", work / "sharded.bam"
    local, sharded, breakdowns = [], [], []
    with LocalCluster(n_workers=args.threads, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        for _ in range(args.repeats):
            t = time.perf_counter()
            want = aligner.align_fastq(r1, r2, local_bam, mark_duplicates=True)
            local.append(time.perf_counter() - t)
            t = time.perf_counter()
            got = aligner.align_fastq(r1, r2, sharded_bam, mark_duplicates=True,
                                      executor=client, shard_pairs=args.shard_pairs)
            sharded.append(time.perf_counter() - t)
            breakdowns.append(got["driver_seconds"])
    best = min(range(len(sharded)), key=sharded.__getitem__)
    identical = filecmp.cmp(local_bam, sharded_bam, shallow=False)
    results = {
        "machine": machine_info(None),
        "pairs": want["reads"] // 2,
        "threads": args.threads,
        "shards": got["shards"],
        "shard_pairs": args.shard_pairs,
        "local_s": min(local),
        "sharded_s": sharded[best],
        "driver_seconds": breakdowns[best],
        "identical": identical,
        "duplicates_marked": got["duplicates"]["reads_marked"],
    }
    b = results["driver_seconds"]
    rest = results["sharded_s"] - b["leading_shard"] - b["merge"]
    print(f"### Sharded alignment, {results['pairs']:,} pairs, {args.threads} threads / "
          f"{args.threads} Dask workers, min of {args.repeats}\n")
    print("| run | wall s | reads/s |")
    print("|---|---:|---:|")
    for name, wall in (("one process, threads", results["local_s"]),
                       (f"Dask, {got['shards']} shards", results["sharded_s"])):
        print(f"| {name} | {wall:.2f} | {want['reads'] / wall:,.0f} |")
    print(f"\n- sharded / local wall: {results['sharded_s'] / results['local_s']:.2f}x")
    print(f"- the sharded run's wall: leading shard alone {b['leading_shard']:.2f} s, the "
          f"other shards {rest:.2f} s (the driver cutting shards {b['cut']:.2f} s of it, beside "
          f"the workers), merging the parts and marking {b['merge']:.2f} s")
    print(f"- BAMs byte-identical: {'yes' if identical else 'NO'}; "
          f"{results['duplicates_marked']:,} reads marked")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    if not args.workdir:
        for p in work.iterdir():
            p.unlink()
        os.rmdir(work)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
