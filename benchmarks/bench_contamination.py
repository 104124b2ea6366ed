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
3. times ``gmsaccel contamination -f REF --resource population-v2.vcf.gz MIX.bam -t T`` (min of
   ``--repeats``) and reports each estimate, its 95% interval and whether the interval holds c.

No contamination estimator is packaged in Debian or PyPI here (VerifyBamID2, GATK's
CalculateContamination, ContEst), so the truth of each mix is the oracle.

Then (unless ``--skip-tumour``) the same for somatic calling: the tumour's reads with
``--tumour-fraction`` (5%) replaced by the second person's, aligned, the contamination
estimated, and ``gmsaccel call --somatic tumour.bam --germline-resource
population-v2.vcf.gz``
timed without and with ``--contamination`` (the estimate), each scored with
shared/bench/vcfeval.sh against the somatic truth, the germline truth (leaks) and the second
person's alleles the patient lacks ("foreign": what contamination makes).

With ``--lanes N`` also the read groups apart: the normal's pairs cut into N lanes (read
groups L1..LN of one sample, aligned together by ``gmsaccel align`` with one ``-R`` per lane),
the second lane's with ``--lane-fraction`` (5%) of its pairs replaced by the second person's,
then ``gmsaccel contamination --per-read-group`` timed: every lane's estimate against its truth
(one lane with foreign reads among clean ones: the swapped or contaminated lane an operator
must find).

Usage: python3 benchmarks/bench_contamination.py --threads 2 [--fractions 0,0.01,0.05]
       [--lanes 4]
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


def second_person(ref: Path, resource: Path, seed: int
                  ) -> tuple[list, set[tuple[str, int, str, str]]]:
    """Haplotypes of a person drawn from the resource, and the alleles they carry: each allele
    on each haplotype with its population frequency (one ALT per position: the first drawn
    wins)."""
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
    return apply_variants(read_fasta(ref), kept), {(v.contig, v.pos, v.ref, v.alt) for v in kept}


def foreign_alleles(sdir: Path, alleles: set[tuple[str, int, str, str]]
                    ) -> set[tuple[str, int, str, str]]:
    """The second person's alleles that the sample (its germline truth) lacks."""
    own = set()
    with pysam.VariantFile(os.fspath(sdir / "germline.vcf.gz")) as vf:
        for r in vf:
            own.update((r.contig, r.pos, r.ref, a) for a in r.alts or ())
    return {a for a in alleles if a not in own}


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


def _foreign(reads: list) -> list:
    """The other person's reads, renamed apart from the sample's."""
    return [(f"b{x[0]}", *x[1:]) for x in reads]


def align_lanes(gms: list[str], ref: Path, lanes: list[tuple[list, list]], groups: list[str],
                bam: Path, threads: int) -> None:
    """Lanes of read pairs (each its mates' reads) written as FASTQ and aligned with gmsaccel
    into bam (+ .bai), which appears only when complete; one -R per group (one for all, or
    one per lane)."""
    files: list[list[str]] = [[], []]
    for n, lane in enumerate(lanes, 1):
        for mate, reads in enumerate(lane):
            files[mate].append(os.fspath(write_fastq(
                bam.with_name(f"{bam.stem}_L{n}_{mate + 1}.fq"), reads)))
    tmp = bam.with_name(f"tmp-{bam.name}")
    subprocess.run(gms + ["align", os.fspath(ref), ",".join(files[0]), ",".join(files[1]),
                          "-o", os.fspath(tmp), *(x for rg in groups for x in ("-R", rg)),
                          "-t", str(threads), "-q"], check=True)
    for suffix in ("", ".bai"):
        if Path(f"{tmp}{suffix}").exists():
            os.replace(f"{tmp}{suffix}", f"{bam}{suffix}")
    for f in files[0] + files[1]:
        Path(f).unlink()


def align_mix(gms: list[str], ref: Path, stem: Path, kept: int,
              other: tuple[list, list], bam: Path, sample: str, threads: int) -> None:
    """The first `kept` pairs of STEM_{1,2}.fq.gz and the other person's pairs, aligned with
    gmsaccel into bam (+ .bai), which appears only when complete."""
    mates = [read_pairs(Path(f"{stem}_{mate}.fq.gz"), kept) + _foreign(reads)
             for mate, reads in zip((1, 2), other, strict=True)]
    align_lanes(gms, ref, [(mates[0], mates[1])], [rf"@RG\tID:{sample}\tSM:{sample}"], bam,
                threads)


def lanes_bam(gms: list[str], ref: Path, stem: Path, n: int, lanes: int, dirty: int,
              fraction: float, other: tuple[list, list], bam: Path, threads: int) -> None:
    """The normal's first n pairs cut into `lanes` lanes of one sample (read groups L1..),
    lane `dirty` (0-based) with `fraction` of its pairs the other person's, aligned with
    gmsaccel into bam (+ .bai), which appears only when complete."""
    per = n // lanes
    own = [read_pairs(Path(f"{stem}_{mate}.fq.gz"), per * lanes) for mate in (1, 2)]
    cut = []
    for lane in range(lanes):
        k = int(round(fraction * per)) if lane == dirty else 0
        first, second = (own[m][lane * per : (lane + 1) * per - k] + _foreign(other[m][:k])
                         for m in (0, 1))
        cut.append((first, second))
    align_lanes(gms, ref, cut, [rf"@RG\tID:L{lane + 1}\tSM:LANES\tLB:lib1"
                                for lane in range(lanes)], bam, threads)


def timed(argv: list[str], repeats: int) -> float:
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t0)
    return min(walls)


def write_sites(path: Path, ref: Path, alleles: set[tuple[str, int, str, str]]) -> Path:
    """Alleles as a sites VCF (BGZF, tabix), for vcfeval.sh."""
    with pysam.FastaFile(os.fspath(ref)) as fa:
        header = pysam.VariantHeader()
        for name, length in zip(fa.references, fa.lengths, strict=True):
            header.contigs.add(name, length=length)
        order = {n: i for i, n in enumerate(fa.references)}
    header.add_line('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
    header.add_sample("truth")
    with pysam.VariantFile(os.fspath(path), "wz", header=header) as out:
        for contig, pos, r, a in sorted(alleles, key=lambda x: (order[x[0]], x[1], x[3])):
            rec = out.new_record(contig=contig, start=pos - 1, alleles=(r, a))
            rec.samples["truth"]["GT"] = (0, 1)
            out.write(rec)
    pysam.tabix_index(os.fspath(path), preset="vcf", force=True)
    return path


def tumour_rows(args: argparse.Namespace, sdir: Path, resource: Path, person: list,
                foreign: set, gms: list[str], work: Path) -> list[dict[str, object]]:
    from bench_align import find_bench_kit
    from bench_call import vcfeval

    ref = sdir / "ref.fa"
    kit = find_bench_kit(Path(__file__).resolve())
    if kit is None:
        raise SystemExit("shared/bench (vcfeval.sh) not found")
    n = count_pairs(sdir / "tumour_1.fq.gz")
    c = args.tumour_fraction
    k = int(round(c * n))
    bam = work / f"tumour-mix-{c:g}-s{args.seed}.bam"
    if not bam.exists():
        b1, b2 = simulate_pairs(person, k, seed=args.seed + 2)
        print(f"[bench] aligning the tumour mixed {c:g} ({n - k:,} + {k:,} pairs)",
              file=sys.stderr, flush=True)
        align_mix(gms, ref, sdir / "tumour", n - k, (b1, b2), bam, "TUMOUR", args.threads)
    est_json = work / "tumour-estimate.json"
    est_wall = timed(gms + ["contamination", "-f", os.fspath(ref), "--resource",
                            os.fspath(resource), os.fspath(bam), "-t", str(args.threads),
                            "--json", os.fspath(est_json), "-q"], args.repeats)
    est = json.loads(est_json.read_text())
    foreign_vcf = write_sites(work / "foreign.vcf.gz", ref, foreign)
    rows: list[dict[str, object]] = [{"what": "estimate", "truth": c, "wall_s": est_wall,
                                      **est}]
    for label, extra in (("resource only", []),
                         (f"resource + --contamination {est['fraction']:.4f}",
                          ["--contamination", f"{est['fraction']:.6f}"])):
        out = work / f"tumour-calls-{len(rows)}.vcf.gz"
        wall = timed(gms + ["call", "-f", os.fspath(ref), "--somatic", os.fspath(bam),
                            "--germline-resource", os.fspath(resource), "-o", os.fspath(out),
                            "-t", str(args.threads), "-q", *extra], args.repeats)
        acc = vcfeval(kit, ref, sdir / "somatic.vcf.gz", out, 0)
        germ = vcfeval(kit, ref, sdir / "germline.vcf.gz", out, 0)
        other = vcfeval(kit, ref, foreign_vcf, out, 0)
        rows.append({"what": label, "wall_s": wall, "accuracy": acc,
                     "germline_leaks": sum(int(germ[x]["tp"]) for x in ("snv", "indel")),
                     "foreign_leaks": sum(int(other[x]["tp"]) for x in ("snv", "indel")),
                     "foreign": len(foreign)})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sample-dir", default=os.fspath(DEFAULT_SAMPLE),
                    help="somatic_sample.py's output (default: the cached kp pair)")
    ap.add_argument("--fractions", default=",".join(f"{f:g}" for f in FRACTIONS),
                    help="contamination fractions of the mixes, comma-separated")
    ap.add_argument("--threads", type=int, default=2, help="threads (2)")
    ap.add_argument("--repeats", type=int, default=3, help="runs timed, min reported (3)")
    ap.add_argument("--seed", type=int, default=7, help="the second person's seed (7)")
    ap.add_argument("--gmsaccel", default=DEFAULT_GMSACCEL)
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--skip-tumour", action="store_true",
                    help="leave out the contaminated tumour's somatic calls")
    ap.add_argument("--lanes", type=int, default=0,
                    help="also N lanes of one sample, the second with --lane-fraction of "
                         "another person's reads, estimated per read group (0: not)")
    ap.add_argument("--lane-fraction", type=float, default=0.05,
                    help="the contaminated lane's share of the other person's reads (0.05)")
    ap.add_argument("--tumour-fraction", type=float, default=0.05,
                    help="the tumour's reads replaced by the second person's (0.05)")
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
    person, carried = second_person(ref, resource, args.seed)
    b1 = b2 = None
    rows = []
    for c in fractions:
        bam = work / f"mix-{c:g}-s{args.seed}.bam"
        if not bam.exists():
            if b1 is None:
                print(f"[bench] a second person from {resource.name}, {most:,} pairs",
                      file=sys.stderr, flush=True)
                b1, b2 = simulate_pairs(person, most, seed=args.seed + 1)
            k = int(round(c * n))
            print(f"[bench] aligning the {c:g} mix ({n - k:,} + {k:,} pairs)", file=sys.stderr,
                  flush=True)
            align_mix(gms, ref, sdir / "normal", n - k, (b1[:k], b2[:k]), bam, "MIX",
                      args.threads)
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
    lanes: dict[str, object] = {}
    if args.lanes > 1:
        bam = work / f"lanes-{args.lanes}-{args.lane_fraction:g}-s{args.seed}.bam"
        if not bam.exists():
            if b1 is None:
                b1, b2 = simulate_pairs(person, most, seed=args.seed + 1)
            need = int(round(args.lane_fraction * (n // args.lanes)))
            if need > len(b1):
                b1, b2 = simulate_pairs(person, need, seed=args.seed + 1)
            print(f"[bench] aligning {args.lanes} lanes, L2 with {args.lane_fraction:g} of "
                  "another person's", file=sys.stderr, flush=True)
            lanes_bam(gms, ref, sdir / "normal", n, args.lanes, 1, args.lane_fraction,
                      (b1, b2), bam, args.threads)
        walls, result = [], {}
        for _ in range(args.repeats):
            out = work / "estimate-lanes.json"
            t0 = time.perf_counter()
            subprocess.run(gms + ["contamination", "-f", os.fspath(ref), "--resource",
                                  os.fspath(resource), os.fspath(bam), "--per-read-group",
                                  "-t", str(args.threads), "--json", os.fspath(out), "-q"],
                           check=True, stdout=subprocess.DEVNULL)
            walls.append(time.perf_counter() - t0)
            result = json.loads(out.read_text())
        lanes = {"lanes": args.lanes, "wall_s": min(walls), **result}
        truth = {f"L{i + 1}": (args.lane_fraction if i == 1 else 0.0) for i in range(args.lanes)}
        print(f"\n### {args.lanes} lanes of {n // args.lanes:,} pairs, L2 with "
              f"{100 * args.lane_fraction:g}% another person's; --per-read-group in "
              f"{min(walls):.2f} s (the sample: {100 * result['fraction']:.2f}%, "
              f"{100 * result['low']:.2f}-{100 * result['high']:.2f}%)\n")
        print("| read group | truth | estimate | 95% interval | holds truth | sites | reads |")
        print("|---|---:|---:|---|---|---:|---:|")
        for g in result["read_groups"]:
            t = truth.get(g["read_group"], float("nan"))
            holds = g["low"] <= t <= g["high"]
            print(f"| {g['read_group']} | {100 * t:.1f}% | {100 * g['fraction']:.2f}% | "
                  f"{100 * g['low']:.2f}-{100 * g['high']:.2f}% | {'yes' if holds else 'no'} | "
                  f"{g['sites']:,} | {g['reads']:,} |")
    tumour: list[dict[str, object]] = []
    if not args.skip_tumour:
        foreign = foreign_alleles(sdir, carried)
        tumour = tumour_rows(args, sdir, resource, person, foreign, gms, work)
        est = tumour[0]
        print(f"\n### The tumour's reads, {100 * args.tumour_fraction:g}% replaced by the "
              f"second person's; tumour-only calling with the resource\n")
        print(f"- estimate {100 * est['fraction']:.2f}% ({100 * est['low']:.2f}-"
              f"{100 * est['high']:.2f}%) in {est['wall_s']:.2f} s\n")
        print("| call | wall s | SNV P / R / F1 | indel P / R / F1 | germline leaks | "
              "the other person's alleles passed |")
        print("|---|---:|---|---|---:|---:|")
        for r in tumour[1:]:
            acc = r["accuracy"]
            cells = [" / ".join(f"{acc[kind][m]:.4f}" for m in ("precision", "recall", "f1"))
                     for kind in ("snv", "indel")]
            print(f"| {r['what']} | {r['wall_s']:.2f} | {cells[0]} | {cells[1]} | "
                  f"{r['germline_leaks']} | {r['foreign_leaks']} of {r['foreign']} |")
    print(f"\n- machine: {os.cpu_count()} CPUs, 1-minute load {os.getloadavg()[0]:.1f} at the end")
    if args.out:
        Path(args.out).write_text(json.dumps({"mixes": rows, "lanes": lanes, "tumour": tumour},
                                             indent=1)
                                  + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
