#!/usr/bin/env python3
"""Pileup benchmark: AlignmentSource load() + pileup() over a whole BAM, window by window.

Times ``AlignmentSource.pileup`` (region query, filtering, decoding, mate-overlap masking and
per-position counts, plus the copy into numpy) over every contig in windows of ``--window``
bases, for each decompression thread count in ``--threads``, and ``samtools view -c`` on the same
file as the floor set by BGZF decompression alone. Minimum wall time of ``--repeats`` runs.

Usage: python3 benchmarks/bench_pileup.py [BAM] [--threads 1 2] [--window 1000000]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time
from pathlib import Path

from gmsaccel import _core

DEFAULT_BAM = Path.home() / ".cache" / "gmsaccel-bench" / "kp" / "bwa.bam"


def run_pileup(bam: Path, threads: int, window: int) -> tuple[float, int, int]:
    t = time.perf_counter()
    src = _core.AlignmentSource(bam, threads=threads)
    loaded = bases = 0
    for name, length in src.contigs:
        for start in range(0, length, window):
            d = src.pileup(name, start, min(start + window, length))
            loaded += d["loaded"]
            bases += int(d["base_counts"].sum())
    return time.perf_counter() - t, loaded, bases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bam", nargs="?", type=Path, default=DEFAULT_BAM)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--window", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    for th in args.threads:
        runs = [run_pileup(args.bam, th, args.window) for _ in range(args.repeats)]
        best = min(r[0] for r in runs)
        _, loaded, bases = runs[0]
        print(f"pileup threads={th} window={args.window}: {best:.2f} s "
              f"({loaded:,} reads loaded, {bases:,} bases counted, {loaded / best:,.0f} reads/s)")
    if shutil.which("samtools"):
        for th in args.threads:
            best = float("inf")
            for _ in range(args.repeats):
                t = time.perf_counter()
                subprocess.run(["samtools", "view", "-c", f"-@{th - 1}", str(args.bam)],
                               check=True, capture_output=True)
                best = min(best, time.perf_counter() - t)
            print(f"samtools view -c -@{th - 1} (decompression floor): {best:.2f} s")


if __name__ == "__main__":
    main()
