#!/usr/bin/env python3
"""Given-allele genotyping benchmark: `gmsaccel call --alleles --alleles-only` against
`bcftools mpileup -T | bcftools call -m -C alleles -T`, in one sitting.

On the shared K. pneumoniae data set (``kp/bwa.bam`` and its diploid truth), a panel is made once
into the cache: every truth allele plus ``--ref-sites`` random substitutions at least 5 bases
from any truth variant (fixed seed), the way a pharmacogenomic or known-site panel mixes alleles
a sample carries with alleles it lacks. Each tool genotypes exactly those alleles; the score is
genotype concordance: the share of panel alleles whose genotype is the truth's (0/1 or 1/1 from
the truth's AF, 0/0 for the random sites), after ``bcftools norm -m-any`` of both sides; beside
it the call rate (alleles given a genotype, not ./. or absent) and the concordance of those. A site
bcftools writes without an ALT (its hom-ref form) stands for every panel allele there. With
``--small N`` it also times gmsaccel on a panel of N of those alleles, where it reads only their
neighbourhoods.

Usage: python3 benchmarks/bench_alleles.py --threads 2 [--repeats 3] [--out results.json]
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pysam
from bench_align import (
    BenchError,
    Timer,
    common_parser,
    find_bench_kit,
    machine_info,
    resolve_data,
    tool_version,
)

SEED = 3


def _norm(ref: Path, vcf: Path) -> dict[tuple[str, int, str, str], list[str]]:
    """(CHROM, POS, REF, ALT) -> the record's columns, split and normalised by bcftools."""
    text = subprocess.run(["bcftools", "norm", "-m-any", "-f", str(ref), str(vcf)],
                          check=True, capture_output=True, text=True).stdout
    out = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            f = line.split("\t")
            out[(f[0], int(f[1]), f[3], f[4])] = f
    return out


def _gt(columns: list[str]) -> str:
    return columns[9].split(":")[0].replace("|", "/") if len(columns) > 9 else ""


def make_panel(data: Path, cache: Path, ref_sites: int) -> tuple[Path, Path, Path]:
    """The panel VCF (bgzipped, indexed), bcftools' alleles file, and the expected genotypes."""
    panel = cache / f"panel-{ref_sites}.vcf.gz"
    alleles = cache / f"panel-{ref_sites}.tsv.gz"
    expected = cache / f"panel-{ref_sites}.expected.json"
    if panel.exists() and alleles.exists() and expected.exists():
        return panel, alleles, expected
    cache.mkdir(parents=True, exist_ok=True)
    fa = pysam.FastaFile(str(data / "ref.fa"))
    truth = list(pysam.VariantFile(str(data / "truth.vcf.gz")))
    near = {(r.chrom, r.pos + d) for r in truth for d in range(-5, 6)}
    rows = {(r.chrom, r.pos, r.ref, a) for r in truth for a in r.alts}
    rng = random.Random(SEED)
    big = [c for c in fa.references if fa.get_reference_length(c) > 100_000]
    added = 0
    while added < ref_sites:
        c = rng.choice(big)
        p = rng.randrange(1_000, fa.get_reference_length(c) - 1_000)
        b = fa.fetch(c, p - 1, p).upper()
        if (c, p) in near or b not in "ACGT":
            continue
        rows.add((c, p, b, rng.choice([x for x in "ACGT" if x != b])))
        added += 1
    order = {c: i for i, c in enumerate(fa.references)}
    lines = ["##fileformat=VCFv4.2"]
    lines += [f"##contig=<ID={c},length={fa.get_reference_length(c)}>" for c in fa.references]
    lines.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
    lines += [f"{c}\t{p}\t.\t{r}\t{a}\t.\t.\t."
              for c, p, r, a in sorted(rows, key=lambda x: (order[x[0]], x[1], x[2], x[3]))]
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "panel.vcf"
        plain.write_text("\n".join(lines) + "\n")
        pysam.tabix_compress(str(plain), str(panel), force=True)
    pysam.tabix_index(str(panel), preset="vcf", force=True)
    tsv = subprocess.run(["bcftools", "query", "-f", "%CHROM\t%POS\t%REF,%ALT\n", str(panel)],
                         check=True, capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "alleles.tsv"
        plain.write_text(tsv)
        pysam.tabix_compress(str(plain), str(alleles), force=True)
    pysam.tabix_index(str(alleles), seq_col=0, start_col=1, end_col=1, force=True)
    truth_gt = {}  # AF 0.5: het, 1: hom (prepare.sh's planted diploid truth)
    for key, cols in _norm(data / "ref.fa", data / "truth.vcf.gz").items():
        af = next(float(x[3:].split(",")[0]) for x in cols[7].split(";") if x.startswith("AF="))
        truth_gt[key] = "1/1" if af > 0.99 else "0/1"
    want = {"|".join(map(str, k)): truth_gt.get(k, "0/0")
            for k in _norm(data / "ref.fa", panel)}
    expected.write_text(json.dumps(want))
    return panel, alleles, expected


def concordance(ref: Path, vcf: Path, expected: dict[str, str]) -> dict[str, object]:
    calls = {k: _gt(cols) for k, cols in _norm(ref, vcf).items()}
    site_gt = {(k[0], k[1]): gt for k, gt in calls.items() if k[3] == "."}
    counts: Counter[str] = Counter()
    for key, want in expected.items():
        c, p, r, a = key.split("|")
        gt = calls.get((c, int(p), r, a), site_gt.get((c, int(p))))
        gt = "0/1" if gt == "1/0" else gt
        if gt is None:
            counts["missing"] += 1
        elif "." in gt:
            counts["no call"] += 1
        elif gt == want:
            counts["right"] += 1
        else:
            counts[f"{want} called {gt}"] += 1
    called = len(expected) - counts["missing"] - counts["no call"]
    return {"alleles": len(expected), "concordance": counts["right"] / len(expected),
            "call_rate": called / len(expected),
            "called_concordance": counts["right"] / called if called else None,
            "counts": dict(counts)}


def main(argv: list[str] | None = None) -> int:
    p = common_parser(__doc__.split("\n\n")[0],
                      "where the panel is kept (default: DATA/../bench_alleles-cache)",
                      "keep the VCFs and logs here (default: a temporary directory)")
    p.add_argument("--ref-sites", type=int, default=5_000,
                   help="random alleles the sample lacks, beside the truth's (5000)")
    p.add_argument("--small", type=int, default=100,
                   help="also a panel of this many alleles (every k-th; 0: none)")
    args = p.parse_args(argv)
    kit = Path(args.kit).resolve() if args.kit else find_bench_kit(Path(__file__).resolve())
    kit, data = resolve_data(args, kit, need=("ref.fa", "bwa.bam", "truth.vcf.gz"))
    cache = Path(args.cache) if args.cache else data.parent / "bench_alleles-cache"
    panel, alleles, expected_path = make_panel(data, cache, args.ref_sites)
    expected = json.loads(expected_path.read_text())
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_alleles-"))
    work.mkdir(parents=True, exist_ok=True)
    timer = Timer(args.rss, work, args.verbose)
    ref, bam, t = data / "ref.fa", data / "bwa.bam", str(args.threads)
    gms = args.gmsaccel.split()
    runs: dict[str, dict[str, object]] = {}

    def measure(name: str, pipeline: list[list[str]], out: Path,
                then: list[list[str]] | None = None, stdout: Path | None = None,
                score: dict[str, str] | None = None) -> None:
        walls, rss = [], 0.0
        try:
            for _ in range(args.repeats):
                wall, peak = timer.run(pipeline, then, stdout=stdout, label=name)
                walls.append(wall)
                rss = max(rss, peak)
        except BenchError as e:
            runs[name] = {"error": str(e)}
            return
        runs[name] = {"wall_s": min(walls), "walls_s": walls, "peak_rss_mb": rss,
                      **concordance(ref, out, score or expected)}

    if not args.skip_gmsaccel:
        out = work / "gmsaccel.vcf.gz"
        measure("gmsaccel", [gms + ["call", "-f", str(ref), "-t", t, "--alleles", str(panel),
                                    "--alleles-only", "-q", "-o", str(out), str(bam)]], out)
    out = work / "bcftools.vcf.gz"
    measure("bcftools", [["bcftools", "mpileup", "--threads", t, "-f", str(ref), "-T", str(panel),
                          "-a", "AD,DP", str(bam)],
                         ["bcftools", "call", "-m", "-C", "alleles", "-T", str(alleles),
                          "-Oz", "-o", str(out)]], out)
    if args.small and not args.skip_gmsaccel:
        keys = sorted(expected)[:: max(1, len(expected) // args.small)][: args.small]
        small_expected = {k: expected[k] for k in keys}
        small = work / "small.vcf"
        header = subprocess.run(["bcftools", "view", "-h", str(panel)], check=True,
                                capture_output=True, text=True).stdout
        body = [k.replace("|", "\t").split("\t") for k in keys]
        small.write_text(header + "".join(f"{c}\t{p}\t.\t{r}\t{a}\t.\t.\t.\n"
                                          for c, p, r, a in body))
        out = work / "gmsaccel-small.vcf.gz"
        measure(f"gmsaccel ({len(keys)} alleles)",
                [gms + ["call", "-f", str(ref), "-t", t, "--alleles", str(small),
                        "--alleles-only", "-q", "-o", str(out), str(bam)]], out,
                score=small_expected)
    results = {"panel": {"alleles": len(expected), "ref_sites": args.ref_sites},
               "runs": runs, "threads": args.threads, "repeats": args.repeats,
               "versions": {"bcftools": tool_version(["bcftools", "--version"])},
               "machine": machine_info(gms if not args.skip_gmsaccel else None)}
    print("| tool | wall s | peak RSS MB | concordance | call rate | of calls | |\n"
          "|---|---:|---:|---:|---:|---:|---|")
    for name, r in runs.items():
        if "error" in r:
            print(f"| {name} | error | | | {r['error'].splitlines()[0]} |")
            continue
        print(f"| {name} | {r['wall_s']:.2f} | {r['peak_rss_mb']:.0f} | "
              f"{r['concordance']:.4f} | {r['call_rate']:.4f} | "
              f"{r['called_concordance']:.4f} | {r['counts']} |")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    return 1 if any("error" in r for r in runs.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
