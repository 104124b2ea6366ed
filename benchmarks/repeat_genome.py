#!/usr/bin/env python3
"""A synthetic genome with a human-like repeat landscape, and reads simulated from it.

The shared benchmark genome (K. pneumoniae, 5.68 Mbp) has few repeats, so it says little about
how an aligner behaves on a human genome, where about half the sequence is repeats. This
script writes a genome of any size with the repeat classes that make human alignment hard, in
roughly human proportions, then plants variants and simulates read pairs with dwgsim-style
names (truth in the name, as ``shared/bench/mapeval.py`` reads it):

- background: random sequence whose GC content drifts between 35% and 60% per 2 kbp;
- SINEs (Alu-like): 3 subfamilies of a 300 bp consensus, about 10% of the genome, copies 2-20%
  diverged (substitutions and short indels), some 5'-truncated, either strand;
- LINEs (L1-like): a 6 kbp consensus, about 17% of the genome, copies mostly 5'-truncated
  (mean 1.2 kbp), 3-20% diverged;
- segmental duplications: 10-80 kbp copies of the genome (repeats included) at 0.5-4%
  divergence, about 5%;
- satellite arrays: 171 bp monomers in 20-200 kbp arrays, 2-5% diverged between monomers, about
  2%; microsatellites (1-6 bp units, 20-120 bp long), about 1%;
- N gaps of 10 kbp, one per contig.

Variants: SNVs and 1-10 base indels at random (1 per kbp, 15% indels); with --tract-indels
one-unit expansions and contractions of tandem repeat tracts, the commonest indels in human
genomes (about half of all indels there); with --long-indels 11-50 base deletions and
insertions.

Everything is drawn from one seed, so a (size, seed) pair always gives the same files.

usage: repeat_genome.py OUTDIR [--size-mbp 40] [--contigs 4] [--pairs 200000] [--seed 7]
                        [--bwa-index] [--human]
writes OUTDIR/ref.fa (+.fai), OUTDIR/sub_1.fq.gz, OUTDIR/sub_2.fq.gz, OUTDIR/truth.vcf.gz (and
bwa's index beside ref.fa, and bwa.bam), the layout `bench_align.py --data OUTDIR` and
`bench_call.py --data OUTDIR` read:

    python3 benchmarks/repeat_genome.py /tmp/rep40 --bwa-index
    python3 benchmarks/bench_align.py --data /tmp/rep40 --cache /tmp/rep40/cache --repeats 3
    python3 benchmarks/repeat_genome.py /tmp/rep10 --size-mbp 10 --contigs 2 --pairs 1000000 \
        --seed 13 --tract-indels 100 --bwa-bam 2      # 30x, for calling
    python3 benchmarks/bench_call.py --data /tmp/rep10 --skip-haploid --repeats 3
    python3 benchmarks/repeat_genome.py /tmp/hs --human --size-mbp 3088 --pairs 500000
    python3 benchmarks/bench_align.py --data /tmp/hs --cache /tmp/hs/cache --skip-bwa \
        --time-peer-index --repeats 2          # a human-sized index (bwa's takes about an hour)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

_LETTERS = np.frombuffer(b"ACGTN", dtype=np.uint8)


def _random_bases(rng: np.random.Generator, n: int, gc: float) -> np.ndarray:
    p = np.array([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2])
    return rng.choice(4, size=n, p=p).astype(np.uint8)


def _background(rng: np.random.Generator, n: int) -> np.ndarray:
    step = 2000
    pieces = [_random_bases(rng, min(step, n - at), rng.uniform(0.35, 0.60))
              for at in range(0, n, step)]
    return np.concatenate(pieces)


def _mutate(rng: np.random.Generator, seq: np.ndarray, divergence: float) -> np.ndarray:
    """Substitutions at 90% and 1-4 base indels at 10% of `divergence` events per base."""
    out = seq.copy()
    subs = rng.random(out.size) < divergence * 0.9
    out[subs] = (out[subs] + rng.integers(1, 4, size=int(subs.sum()), dtype=np.uint8)) % 4
    n_indels = rng.binomial(out.size, divergence * 0.1)
    if n_indels == 0:
        return out
    at = np.sort(rng.integers(0, out.size, size=n_indels))
    pieces, prev = [], 0
    for a in at.tolist():
        if a < prev:
            continue
        length = int(rng.integers(1, 5))
        pieces.append(out[prev:a])
        if rng.random() < 0.5:  # deletion
            prev = a + length
        else:
            pieces.append(rng.integers(0, 4, size=length, dtype=np.uint8))
            prev = a
    pieces.append(out[prev:])
    return np.concatenate(pieces)


def _revcomp(seq: np.ndarray) -> np.ndarray:
    return (3 - seq)[::-1]


def _place(genome: np.ndarray, at: int, copy: np.ndarray) -> None:
    end = min(genome.size, at + copy.size)
    genome[at:end] = copy[: end - at]


def build_genome(rng: np.random.Generator, size: int) -> np.ndarray:
    genome = _background(rng, size)
    # LINEs first, SINEs inside and beside them, as in real genomes (younger elements land in
    # older ones).
    line = _random_bases(rng, 6000, 0.42)
    placed = 0
    while placed < 0.17 * size:
        length = int(min(6000, max(200, rng.exponential(1200))))
        copy = _mutate(rng, line[6000 - length:], rng.uniform(0.03, 0.20))
        if rng.random() < 0.5:
            copy = _revcomp(copy)
        _place(genome, int(rng.integers(0, size)), copy)
        placed += copy.size
    alu = _random_bases(rng, 300, 0.55)
    subfamilies = [_mutate(rng, alu, 0.05) for _ in range(3)]
    placed = 0
    while placed < 0.10 * size:
        source = subfamilies[int(rng.integers(0, 3))]
        start = int(rng.integers(0, 100)) if rng.random() < 0.3 else 0
        copy = _mutate(rng, source[start:], rng.uniform(0.02, 0.20))
        if rng.random() < 0.5:
            copy = _revcomp(copy)
        _place(genome, int(rng.integers(0, size)), copy)
        placed += copy.size
    monomer = _random_bases(rng, 171, 0.38)
    placed = 0
    while placed < 0.02 * size:
        n = int(rng.integers(20_000, 200_000) // 171)
        array = np.concatenate([_mutate(rng, monomer, rng.uniform(0.02, 0.05)) for _ in range(n)])
        _place(genome, int(rng.integers(0, size)), array)
        placed += array.size
    placed = 0
    while placed < 0.01 * size:
        unit = rng.integers(0, 4, size=int(rng.integers(1, 7)), dtype=np.uint8)
        copies = int(rng.integers(20, 121)) // unit.size + 1
        tract = _mutate(rng, np.tile(unit, copies), 0.01)
        _place(genome, int(rng.integers(0, size)), tract)
        placed += tract.size
    placed = 0
    while placed < 0.05 * size:
        length = int(rng.integers(10_000, 80_000))
        src = int(rng.integers(0, size - length))
        copy = _mutate(rng, genome[src:src + length], rng.uniform(0.005, 0.04))
        if rng.random() < 0.5:
            copy = _revcomp(copy)
        _place(genome, int(rng.integers(0, size)), copy)
        placed += copy.size
    return genome


def tandem_tracts(genome: np.ndarray, min_len: int = 10) -> list[tuple[int, int, int]]:
    """(start, end, period) of the tandem repeat tracts (period 1-6, at least min_len bases, no
    N) in base codes, each reported once, under its shortest period."""
    tracts: dict[int, tuple[int, int, int]] = {}
    for p in range(1, 7):
        same = (genome[p:] == genome[:-p]) & (genome[p:] < 4)
        edges = np.flatnonzero(np.diff(np.concatenate(([0], same.astype(np.int8), [0]))))
        for a, c in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
            if c + p - a >= max(min_len, 2 * p) and a not in tracts:
                tracts[a] = (a, c + p, p)
    return sorted(tracts.values())


def tract_variants(rng: np.random.Generator, contigs: list[tuple[str, str]], per_mbp: float,
                   taken: list) -> list:
    """One-unit expansions and contractions of randomly chosen tandem repeat tracts (the
    commonest indels in human genomes), written left-normalised, 50 bases clear of the
    variants in `taken`."""
    from gmsaccel.simulate import Variant

    out = []
    for name, seq in contigs:
        codes = np.frombuffer(seq.encode(), dtype=np.uint8)
        genome = np.full(codes.size, 4, dtype=np.uint8)
        for i, c in enumerate(b"ACGT"):
            genome[codes == c] = i
        tracts = [t for t in tandem_tracts(genome) if 100 < t[0] < len(seq) - 200]
        n = min(len(tracts), rng.poisson(per_mbp * len(seq) / 1e6))
        busy = sorted(v.pos for v in taken if v.contig == name)
        for j in sorted(rng.choice(len(tracts), size=n, replace=False).tolist()):
            a, b, p = tracts[j]
            near = np.searchsorted(busy, a - 50)
            if near < len(busy) and busy[near] <= b + 50:
                continue
            anchor, unit = seq[a - 1], seq[a:a + p]
            gt = (1, 1) if rng.random() < 1 / 3 else (0, 1)
            if rng.random() < 0.5 and b - a >= 2 * p:
                out.append(Variant(name, a, anchor + unit, anchor, gt))
            else:
                out.append(Variant(name, a, anchor, anchor + unit, gt))
            busy.insert(int(near), a)
    return out


def long_indels(rng: np.random.Generator, contigs: list[tuple[str, str]], per_mbp: float,
                taken: list) -> list:
    """Deletions and insertions of 11-50 bases (random inserted sequence) at random places,
    left-normalised, 50 bases clear of the variants in `taken` and of N."""
    from gmsaccel.simulate import Variant, left_normalize

    out = []
    for name, seq in contigs:
        busy = sorted(v.pos for v in taken if v.contig == name)
        for pos in sorted(rng.integers(200, len(seq) - 200, size=rng.poisson(
                per_mbp * len(seq) / 1e6)).tolist()):
            n = int(rng.integers(11, 51))
            near = np.searchsorted(busy, pos - 110)
            if near < len(busy) and busy[near] <= pos + n + 110:
                continue
            if "N" in seq[pos - 60:pos + n + 60]:
                continue
            gt = (1, 1) if rng.random() < 1 / 3 else (0, 1)
            if rng.random() < 0.5:
                ref, alt = seq[pos - 1:pos + n], seq[pos - 1]
            else:
                ref, alt = seq[pos - 1], seq[pos - 1] + "".join(rng.choice(list("ACGT"), size=n))
            anchor, ref, alt = left_normalize(seq, pos - 1, ref, alt)  # 0-based anchor
            p1 = anchor + 1
            out.append(Variant(name, p1, ref, alt, gt))
            busy.insert(int(np.searchsorted(busy, p1)), p1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--size-mbp", type=float, default=40)
    ap.add_argument("--contigs", type=int, default=4)
    ap.add_argument("--pairs", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=7)
    add_bwa_arguments(ap)
    ap.add_argument("--tract-indels", type=float, default=0, metavar="PER_MBP",
                    help="also expand or contract this many tandem repeat tracts per Mbp (0)")
    ap.add_argument("--long-indels", type=float, default=0, metavar="PER_MBP",
                    help="also plant this many 11-50 base deletions and insertions per Mbp (0)")
    ap.add_argument("--human", action="store_true",
                    help="24 contigs chr1-22, chrX, chrY in GRCh38's proportions (--contigs is "
                         "ignored), each built, varied and sampled on its own, so that a genome "
                         "of human size (--size-mbp 3088) fits in a few GB")
    args = ap.parse_args(argv)
    if args.human:
        return main_human(args)

    from gmsaccel.simulate import (
        apply_variants,
        plant_variants,
        simulate_pairs,
    )

    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    size = int(args.size_mbp * 1e6)
    genome = build_genome(rng, size)
    bounds = np.linspace(0, size, args.contigs + 1).astype(np.int64)
    contigs = []
    for i in range(args.contigs):
        seq = genome[bounds[i]:bounds[i + 1]].copy()
        gap = int(rng.integers(seq.size // 4, seq.size // 2))
        seq[gap:gap + 10_000] = 4
        contigs.append((f"chr{i + 1}", _LETTERS[seq].tobytes().decode()))
    write_reference(out, contigs)
    haps, variants = plant_variants(contigs, rate=0.001, seed=args.seed + 1)
    if args.tract_indels > 0:
        variants = variants + tract_variants(rng, contigs, args.tract_indels, variants)
    if args.long_indels > 0:
        variants = variants + long_indels(rng, contigs, args.long_indels, variants)
    if args.tract_indels > 0 or args.long_indels > 0:
        variants.sort(key=lambda v: (v.contig, v.pos))
        haps = apply_variants(contigs, variants, 2)
    r1, r2 = simulate_pairs(haps, args.pairs, seed=args.seed + 2)
    write_data_set(out, r1, r2, variants, args)
    return 0


# GRCh38's primary chromosomes, lengths in bases (chr1-22, X, Y): 3,088 Mbp in all.
GRCH38_LENGTHS = {
    "chr1": 248_956_422, "chr2": 242_193_529, "chr3": 198_295_559, "chr4": 190_214_555,
    "chr5": 181_538_259, "chr6": 170_805_979, "chr7": 159_345_973, "chr8": 145_138_636,
    "chr9": 138_394_717, "chr10": 133_797_422, "chr11": 135_086_622, "chr12": 133_275_309,
    "chr13": 114_364_328, "chr14": 107_043_718, "chr15": 101_991_189, "chr16": 90_338_345,
    "chr17": 83_257_441, "chr18": 80_373_285, "chr19": 58_617_616, "chr20": 64_444_167,
    "chr21": 46_709_983, "chr22": 50_818_468, "chrX": 156_040_895, "chrY": 57_227_415,
}


def main_human(args: argparse.Namespace) -> int:
    """--human: one contig at a time (repeats, segmental duplications and variants within the
    contig), so that memory follows the largest contig, not the genome. Pairs are split among
    the contigs by length and shuffled together at the end."""
    if args.tract_indels > 0 or args.long_indels > 0:
        raise SystemExit("--human takes no --tract-indels or --long-indels")
    from gmsaccel.simulate import plant_variants, simulate_pairs

    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    scale = args.size_mbp * 1e6 / sum(GRCH38_LENGTHS.values())
    lengths = {name: max(20_000, int(n * scale)) for name, n in GRCH38_LENGTHS.items()}
    total = sum(lengths.values())
    pairs = rng.multinomial(args.pairs, [n / total for n in lengths.values()])
    ref = out / "ref.fa"
    variants: list = []
    r1: list = []
    r2: list = []
    with open(ref, "w") as fa:
        for i, ((name, length), n_pairs) in enumerate(zip(lengths.items(), pairs, strict=True)):
            seq = build_genome(rng, length)
            gap = int(rng.integers(seq.size // 4, seq.size // 2))
            seq[gap:gap + 10_000] = 4
            text = _LETTERS[seq].tobytes().decode()
            del seq
            fa.write(f">{name}\n")
            for at in range(0, len(text), 70):
                fa.write(text[at:at + 70] + "\n")
            haps, planted = plant_variants([(name, text)], rate=0.001,
                                           seed=args.seed + 1 + 1000 * i)
            del text
            variants.extend(planted)
            a, b = simulate_pairs(haps, int(n_pairs), seed=args.seed + 2 + 1000 * i)
            r1.extend(a)
            r2.extend(b)
            print(f"{name}: {length:,} bases, {len(planted):,} variants, {n_pairs:,} pairs",
                  file=sys.stderr, flush=True)
    import pysam

    (out / "ref.fa.fai").unlink(missing_ok=True)
    pysam.faidx(os.fspath(ref))
    # one order for the whole genome, names unique by their place in it
    order = np.random.default_rng(args.seed + 3).permutation(len(r1)).tolist()
    r1 = [(f"{r1[j][0].rsplit(':', 1)[0]}:{k}", r1[j][1], r1[j][2]) for k, j in enumerate(order)]
    r2 = [(f"{r2[j][0].rsplit(':', 1)[0]}:{k}", r2[j][1], r2[j][2]) for k, j in enumerate(order)]
    write_data_set(out, r1, r2, variants, args)
    return 0


def add_bwa_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--bwa-index", action="store_true", help="also run `bwa index ref.fa`")
    ap.add_argument("--bwa-bam", type=int, default=0, metavar="THREADS",
                    help="also align the pairs with bwa mem | samtools sort into bwa.bam (+.bai),"
                         " the BAM bench_call.py calls from (implies --bwa-index)")


def write_reference(out: Path, contigs: list[tuple[str, str]]) -> Path:
    """out/ref.fa (70 bases a line) and a fresh .fai beside it."""
    import pysam

    ref = out / "ref.fa"
    with open(ref, "w") as f:
        for name, seq in contigs:
            f.write(f">{name}\n")
            for at in range(0, len(seq), 70):
                f.write(seq[at:at + 70] + "\n")
    (out / "ref.fa.fai").unlink(missing_ok=True)
    pysam.faidx(os.fspath(ref))
    return ref


def write_data_set(out: Path, r1: list, r2: list, variants: list,
                   args: argparse.Namespace) -> None:
    """The pairs as out/sub_{1,2}.fq.gz, the truth as out/truth.vcf.gz (against out/ref.fa), and
    bwa's files as add_bwa_arguments asked; prints out."""
    from gmsaccel.simulate import write_fastq, write_truth_vcf

    write_fastq(out / "sub_1.fq.gz", r1)
    write_fastq(out / "sub_2.fq.gz", r2)
    write_truth_vcf(out / "truth.vcf.gz", out / "ref.fa", variants)
    bwa_files(out, args.bwa_index, args.bwa_bam)
    print(out)


def bwa_files(out: Path, index: bool, bam_threads: int) -> None:
    """bwa's index of out/ref.fa (index or bam_threads), and with bam_threads out/bwa.bam (+.bai)
    of out/sub_{1,2}.fq.gz: bwa mem | samtools sort."""
    ref = out / "ref.fa"
    if index or bam_threads:
        subprocess.run(["bwa", "index", os.fspath(ref)], check=True, capture_output=True)
    if bam_threads:
        t = str(bam_threads)
        bwa = subprocess.Popen(["bwa", "mem", "-t", t, "-v", "1", os.fspath(ref),
                                os.fspath(out / "sub_1.fq.gz"), os.fspath(out / "sub_2.fq.gz")],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        subprocess.run(["samtools", "sort", f"-@{t}", "-o", os.fspath(out / "bwa.bam"), "-"],
                       stdin=bwa.stdout, check=True, stderr=subprocess.DEVNULL)
        if bwa.wait() != 0:
            raise SystemExit("bwa mem failed")
        subprocess.run(["samtools", "index", os.fspath(out / "bwa.bam")], check=True)


if __name__ == "__main__":
    sys.exit(main())
