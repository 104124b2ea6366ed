#!/usr/bin/env python3
"""Contamination benchmark: gmsaccel contamination on one person's reads mixed with another's.

On the somatic sample's normal (``somatic_sample.py``: 30x of the K. pneumoniae genome with its
germline variants; a person, for the purpose) and its simulated population resource
(``make_population_resource``), it:

1. simulates a second person: at each allele of the resource, each of two haplotypes carries
   it with the allele's population frequency (Hardy-Weinberg), and 2x150 pairs from those
   haplotypes (``gmsaccel.simulate``, seeded);
2. for each contamination fraction c (``--fractions``), writes a mix of the normal's first
   (1 - c) N pairs and c N of the second person's (N: the normal's pairs) and aligns it with
   ``gmsaccel align`` (not timed; cached by fraction);
3. times ``gmsaccel contamination -f REF --resource population.vcf.gz MIX.bam -t T`` (min of
   ``--repeats``) and reports each estimate, its 95% interval and whether the interval holds c.

No contamination estimator is packaged in Debian or PyPI here (VerifyBamID2, GATK's
CalculateContamination, ContEst), so the truth of each mix is the oracle.

Usage: python3 benchmarks/bench_contamination.py --threads 2 [--fractions 0,0.01,0.05]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pysam

REPO = Path(__file__).resolve().parents[1]
if os.fspath(REPO / "src") not in sys.path:
    sys.path.insert(0, os.fspath(REPO / "src"))

from gmsaccel.simulate import (  # noqa: E402
    Variant,
    apply_variants,
    read_fasta,
    simulate_pairs,
    write_fastq,
)

DEFAULT_SAMPLE = Path.home() / ".cache" / "gmsaccel-bench" / "somatic" / \
    "sample-s1-p0.6-r0.0001"
DEFAULT_GMSACCEL = f"env PYTHONPATH={REPO / 'src'} python3 -m gmsaccel"
FRACTIONS = (0.0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)


def second_person(ref: Path, resource: Path, seed: int) -> list:
    """Haplotypes of a person drawn from the resource: each allele on each haplotype with its
    population frequency (one ALT per position: the first drawn wins)."""
    rng = np.random.default_rng(seed)
    variants, taken = [], set()
    with pysam.VariantFile(os.fspath(resource)) as vf:
        for rec in vf:
            for alt, af in zip(rec.alts or (), rec.info["AF"], strict=True):
                gt = (rng.random(2) < af).astype(int)
                if gt.any() and (rec.contig, rec.pos) not in taken:
                    taken.add((rec.contig, rec.pos))
                    variants.append(Variant(rec.contig, rec.pos, rec.ref, alt,
                                            (int(gt[0]), int(gt[1]))))
    # (indels: keep those that do not overlap an earlier variant)
    kept, end = [], {}
    for v in sorted(variants, key=lambda v: (v.contig, v.pos)):
        if v.pos > end.get(v.contig, 0):
            kept.append(v)
            end[v.contig] = v.end
    return apply_variants(read_fasta(ref), kept)


def read_pairs(path: Path, n: int) -> list[tuple[str, str, str]]:
    out = []
    with pysam.FastxFile(os.fspath(path)) as fh:
        for rec in fh:
            if len(out) == n:
                break
            out.append((rec.name, rec.sequence, rec.quality))
    return out


def count_pairs(path: Path) -> int:
    with gzip.open(path, "rb") as fh:
        return sum(1 for _ in fh) // 4


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sample-dir", default=os.fspath(DEFAULT_SAMPLE),
                    help="somatic_sample.py's output (default: the cached kp pair)")
    ap.add_argument("--fractions", default=",".join(f"{f:g}" for f in FRACTIONS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--gmsaccel", default=DEFAULT_GMSACCEL)
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args(argv)
    sdir = Path(args.sample_dir)
    sys.path.insert(0, os.fspath(Path(__file__).resolve().parent))
    from somatic_sample import make_population_resource

    ref = sdir / "ref.fa"
    resource = make_population_resource(sdir)
    gms = shlex.split(args.gmsaccel)
    work = sdir / "contamination"
    work.mkdir(exist_ok=True)
    n = count_pairs(sdir / "normal_1.fq.gz")
    fractions = [float(x) for x in args.fractions.split(",")]
    most = max(int(round(max(fractions) * n)), 1)
    b1 = b2 = None
    rows = []
    for c in fractions:
        bam = work / f"mix-{c:g}-s{args.seed}.bam"
        if not bam.exists():
            if b1 is None:
                print(f"[bench] a second person from {resource.name}, {most:,} pairs",
                      file=sys.stderr, flush=True)
                b1, b2 = simulate_pairs(second_person(ref, resource, args.seed), most,
                                        seed=args.seed + 1)
            k = int(round(c * n))
            a1 = read_pairs(sdir / "normal_1.fq.gz", n - k)
            a2 = read_pairs(sdir / "normal_2.fq.gz", n - k)
            f1 = write_fastq(work / "mix_1.fq", a1 + [(f"b{x[0]}", *x[1:]) for x in b1[:k]])
            f2 = write_fastq(work / "mix_2.fq", a2 + [(f"b{x[0]}", *x[1:]) for x in b2[:k]])
            print(f"[bench] aligning the {c:g} mix ({n - k:,} + {k:,} pairs)", file=sys.stderr,
                  flush=True)
            tmp = work / f"tmp-{bam.name}"
            subprocess.run(gms + ["align", os.fspath(ref), os.fspath(f1), os.fspath(f2), "-o",
                                  os.fspath(tmp), "-R", r"@RG\tID:mix\tSM:MIX", "-t",
                                  str(args.threads), "-q"], check=True)
            for suffix in ("", ".bai"):
                if Path(f"{tmp}{suffix}").exists():
                    os.replace(f"{tmp}{suffix}", f"{bam}{suffix}")
            f1.unlink()
            f2.unlink()
        walls, result = [], None
        for _ in range(args.repeats):
            out = work / "estimate.json"
            t0 = time.perf_counter()
            subprocess.run(gms + ["contamination", "-f", os.fspath(ref), "--resource",
                                  os.fspath(resource), os.fspath(bam), "-t", str(args.threads),
                                  "--json", os.fspath(out), "-q"], check=True,
                           stdout=subprocess.DEVNULL)
            walls.append(time.perf_counter() - t0)
            result = json.loads(out.read_text())
        rows.append({"truth": c, "wall_s": min(walls), **result})
    print(f"### Contamination: {n:,} pairs of one person, a fraction replaced by another's; "
          f"{args.threads} threads, min of {args.repeats}\n")
    print("| truth | estimate | 95% interval | holds truth | sites | wall s |")
    print("|---:|---:|---|---|---:|---:|")
    for r in rows:
        holds = r["low"] <= r["truth"] <= r["high"]
        print(f"| {100 * r['truth']:.1f}% | {100 * r['fraction']:.2f}% | "
              f"{100 * r['low']:.2f}-{100 * r['high']:.2f}% | {'yes' if holds else 'no'} | "
              f"{r['sites']:,} | {r['wall_s']:.2f} |")
    print(f"\n- machine: {os.cpu_count()} CPUs, 1-minute load {os.getloadavg()[0]:.1f} at the end")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
