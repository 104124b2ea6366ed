#!/usr/bin/env python3
"""A sample far from its reference: a stretch of a real genome with variants every few dozen
bases, and read pairs simulated from it.

Bacterial isolates are often called against a reference of another strain of their species,
1-5% of bases apart, and human reads meet such divergence in HLA and other polymorphic
regions. The shared benchmark sample differs from its reference at 1 base in 1,000, so it says
nothing about what divergence does to seeding, MAPQ and calling. This script takes the first
contig of a FASTA (by default the shared K. pneumoniae genome), keeps its first --length-mbp,
plants SNVs and 1-10 base indels at --rate (3%: a variant every 33 bases; 10% indels), at least
4 bases apart, on --ploidy haplotypes, and simulates 30x of 2x150 pairs with dwgsim-style names
(truth in the name, as ``shared/bench/mapeval.py`` reads it).

usage: divergent_sample.py OUTDIR [--reference FASTA] [--length-mbp 1] [--rate 0.03]
                           [--ploidy 1] [--depth 30] [--seed 5] [--bwa-index] [--bwa-bam T]
writes OUTDIR/ref.fa (+.fai), OUTDIR/sub_1.fq.gz, OUTDIR/sub_2.fq.gz, OUTDIR/truth.vcf.gz (and
bwa's index beside ref.fa, and bwa.bam), the layout `bench_align.py --data OUTDIR` and
`bench_call.py --data OUTDIR` read:

    python3 benchmarks/divergent_sample.py /tmp/div1 --bwa-bam 2
    python3 benchmarks/bench_align.py --data /tmp/div1 --cache /tmp/div1/cache --repeats 3
    python3 benchmarks/bench_call.py --data /tmp/div1 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from repeat_genome import add_bwa_arguments, write_data_set, write_reference

DEFAULT_REFERENCE = Path.home() / ".cache" / "gmsaccel-bench" / "kp" / "ref.fa"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--reference", default=os.fspath(DEFAULT_REFERENCE),
                    help="FASTA whose first contig is used (default: the shared kp genome)")
    ap.add_argument("--length-mbp", type=float, default=1.0)
    ap.add_argument("--rate", type=float, default=0.03, help="variants per base (0.03)")
    ap.add_argument("--ploidy", type=int, choices=(1, 2), default=1)
    ap.add_argument("--depth", type=float, default=30)
    ap.add_argument("--seed", type=int, default=5)
    add_bwa_arguments(ap)
    args = ap.parse_args(argv)
    from gmsaccel.simulate import (
        plant_variants,
        read_fasta,
        simulate_pairs,
    )

    contigs = read_fasta(args.reference)
    if not contigs:
        raise SystemExit(f"{args.reference}: no contigs")
    name, seq = contigs[0]
    seq = seq[:int(args.length_mbp * 1e6)]
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    write_reference(out, [(name, seq)])
    haps, variants = plant_variants([(name, seq)], rate=args.rate, indel_fraction=0.1,
                                    ploidy=args.ploidy, seed=args.seed, min_spacing=4)
    pairs = int(args.depth * len(seq) / 300)
    r1, r2 = simulate_pairs(haps, pairs, seed=args.seed + 1)
    write_data_set(out, r1, r2, variants, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
