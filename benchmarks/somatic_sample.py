#!/usr/bin/env python3
"""A simulated tumour/normal pair with a germline and a somatic truth set.

The shared benchmark sample is one diploid genome; a somatic caller needs two samples of one
individual: a normal, which carries only the germline variants, and a tumour, an impure mix of
normal cells and tumour cells that carry somatic variants on top, some in every tumour cell
(clonal) and some in nested subsets of them (subclones). This script builds such a pair on a
reference (by default the shared K. pneumoniae genome) with the project's own simulator
(``gmsaccel.simulate``):

- germline: SNVs and 1-10 base indels at 1 per kbp (15% indels), diploid, about two thirds
  heterozygous (``plant_variants``);
- somatic: a second set at --somatic-rate (1e-4 per base; 15% indels), none within 50 bases of
  a germline variant, each on one copy (``1|0`` or ``0|1`` at random). 40% are clonal; the rest
  fall in three nested subclones (20% each) present in 1/2, 4/15 and 2/15 of the tumour cells;
- reads: 2x150 pairs, insert 400 +- 40, base error 0.1-1% along the read (``simulate_pairs``).
  The normal's come from the germline haplotypes; the tumour's from a mix of normal cells
  (1 - purity of the pairs) and of each tumour cell population in proportion to its share of
  the cells, so that a somatic variant's expected allele fraction (VAF) in the tumour reads is
  purity * cell fraction / 2: 0.30, 0.15, 0.08 and 0.04 at the default purity 0.6.

Read names follow ``gmsaccel.simulate``'s dwgsim-like convention (truth in the name) with a
``:SET.CHUNK`` tail that keeps them unique across the mixed read sets.

usage: somatic_sample.py [--reference FASTA] [--out DIR] [--normal-pairs N] [--tumour-pairs N]
                         [--purity 0.6] [--somatic-rate 1e-4] [--seed 1]
writes DIR/ref.fa (+ .fai; a link to the reference), DIR/{normal,tumour}_{1,2}.fq.gz,
DIR/germline.vcf.gz, DIR/somatic.vcf.gz (INFO VAF, CF, LEVEL; sample TUMOUR) with .tbi
indexes, and DIR/sample.json (the parameters and counts). A rerun with the same parameters
whose outputs are newer than the reference does nothing.

    python3 benchmarks/somatic_sample.py --out /tmp/somatic      # kp, 30x normal, 60x tumour
    python3 benchmarks/bench_somatic.py --threads 2               # builds it itself, cached
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pysam

if __package__ in (None, ""):  # run as a script: find the package in this checkout's src/
    _SRC = Path(__file__).resolve().parents[1] / "src"
    try:
        import gmsaccel  # noqa: F401
    except ImportError:
        sys.path.insert(0, os.fspath(_SRC))

from gmsaccel.simulate import (
    Haplotype,
    Variant,
    apply_variants,
    plant_variants,
    read_fasta,
    simulate_pairs,
    write_fastq,
    write_truth_vcf,
)

SCHEMA = 1  # bump when the outputs change for the same parameters
DEFAULT_REFERENCE = Path.home() / ".cache" / "gmsaccel-bench" / "kp" / "ref.fa"
GERMLINE_RATE = 0.001
INDEL_FRACTION = 0.15
SOMATIC_GAP = 50  # no somatic variant's span within this many bases of a germline variant's
# Tumour cell fractions of the clonal level and of the three nested subclones, and the share of
# the somatic variants at each level. The expected VAF is purity * cell fraction / 2.
CELL_FRACTIONS = (1.0, 1 / 2, 4 / 15, 2 / 15)
LEVEL_SHARES = (0.4, 0.2, 0.2, 0.2)
NORMAL_DEPTH = 30.0
TUMOUR_DEPTH = 60.0
READ_LENGTH = 150
INSERT_MEAN = 400
CHUNK_PAIRS = 200_000  # pairs per simulate_pairs call (bounds its temporary arrays)
FastqRecord = tuple[str, str, str]
OUTPUTS = ("ref.fa", "ref.fa.fai", "normal_1.fq.gz", "normal_2.fq.gz", "tumour_1.fq.gz",
           "tumour_2.fq.gz", "germline.vcf.gz", "germline.vcf.gz.tbi", "somatic.vcf.gz",
           "somatic.vcf.gz.tbi")


def _seed(seed: int, *stream: int) -> int:
    """An independent 63-bit seed for one random stream of this sample."""
    return int(np.random.SeedSequence([seed, *stream]).generate_state(1, np.uint64)[0] >> 1)


def default_pairs(genome_length: int, depth: float) -> int:
    return max(1, round(depth * genome_length / (2 * READ_LENGTH)))


def level_vafs(purity: float) -> list[float]:
    """The expected tumour-read VAF of each level, clonal first."""
    return [purity * cf / 2 for cf in CELL_FRACTIONS]


def _apportion(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainder; sums to ``total``)."""
    w = np.asarray(weights, dtype=np.float64)
    exact = total * w / w.sum()
    out = np.floor(exact).astype(np.int64)
    for i in np.argsort(-(exact - out), kind="stable")[: total - int(out.sum())]:
        out[i] += 1
    return [int(x) for x in out]


def _near(v: Variant, starts: dict[str, np.ndarray], ends: dict[str, np.ndarray],
          gap: int) -> bool:
    """Whether ``v``'s reference span lies within ``gap`` bases of a germline span."""
    s, e = starts.get(v.contig), ends.get(v.contig)
    if s is None or e is None or s.size == 0:
        return False
    # germline spans are sorted and disjoint: only the last one starting before v.end + gap
    # can reach it from the left or overlap; the next one is the nearest on the right
    i = int(np.searchsorted(s, v.end + gap, side="right")) - 1
    return i >= 0 and e[i] >= v.pos - gap


def somatic_variants(contigs: list[tuple[str, str]], germline: list[Variant], rate: float,
                     seed: int) -> tuple[list[Variant], int]:
    """Somatic variants away from the germline ones, each on one random copy.

    Returns (kept, how many were dropped for being within SOMATIC_GAP of a germline variant).
    """
    _, planted = plant_variants(contigs, rate=rate, indel_fraction=INDEL_FRACTION, ploidy=2,
                                seed=_seed(seed, 2))
    starts: dict[str, np.ndarray] = {}
    ends: dict[str, np.ndarray] = {}
    for name, _ in contigs:
        vs = sorted((v for v in germline if v.contig == name), key=lambda v: v.pos)
        starts[name] = np.array([v.pos for v in vs], dtype=np.int64)
        ends[name] = np.array([v.end for v in vs], dtype=np.int64)
    kept = [v for v in planted if not _near(v, starts, ends, SOMATIC_GAP)]
    copy = np.random.default_rng(_seed(seed, 3)).integers(0, 2, size=len(kept))
    out = [Variant(v.contig, v.pos, v.ref, v.alt, (1, 0) if c == 0 else (0, 1))
           for v, c in zip(kept, copy.tolist(), strict=True)]
    return out, len(planted) - len(kept)


def assign_levels(n: int, seed: int) -> np.ndarray:
    """The clone level (0 clonal .. 3) of each of ``n`` somatic variants, at random."""
    counts = _apportion(n, LEVEL_SHARES) if n else [0] * len(LEVEL_SHARES)
    levels = np.repeat(np.arange(len(counts)), counts)
    return np.random.default_rng(_seed(seed, 4)).permutation(levels)


def _simulate(haps: Sequence[Haplotype], n_pairs: int, seed: int, stream: int, tag: str
              ) -> tuple[list[FastqRecord], list[FastqRecord]]:
    """``n_pairs`` pairs from ``haps`` in chunks, each chunk with its own seed; names get
    ``:{tag}.{chunk}`` appended (simulate_pairs numbers pairs per call)."""
    r1: list[FastqRecord] = []
    r2: list[FastqRecord] = []
    for chunk, n in enumerate(_chunks(n_pairs)):
        a, b = simulate_pairs(haps, n, read_length=READ_LENGTH, insert_mean=INSERT_MEAN,
                              seed=_seed(seed, 10, stream, chunk))
        suffix = f":{tag}.{chunk}"
        r1.extend((name + suffix, s, q) for name, s, q in a)
        r2.extend((name + suffix, s, q) for name, s, q in b)
    return r1, r2


def _chunks(n: int) -> Iterator[int]:
    while n > 0:
        yield min(n, CHUNK_PAIRS)
        n -= CHUNK_PAIRS


def _write_shuffled(out: Path, stem: str, r1: list[FastqRecord], r2: list[FastqRecord],
                    seed: int) -> None:
    order = np.random.default_rng(seed).permutation(len(r1)).tolist()

    def write(mate: str, reads: list[FastqRecord]) -> None:
        tmp = out / f".{stem}_{mate}.tmp.fq.gz"
        write_fastq(tmp, (reads[i] for i in order))
        tmp.replace(out / f"{stem}_{mate}.fq.gz")

    # the two mates side by side: zlib releases the GIL while it compresses
    with ThreadPoolExecutor(2) as pool:
        for f in [pool.submit(write, "1", r1), pool.submit(write, "2", r2)]:
            f.result()


def write_somatic_vcf(path: Path, ref: Path, contigs: list[tuple[str, str]],
                      variants: list[Variant], levels: np.ndarray, purity: float) -> None:
    """The somatic truth: one record per variant, sample TUMOUR, INFO VAF/CF/LEVEL; sorted,
    BGZF-compressed and tabix-indexed."""
    header = pysam.VariantHeader()
    header.add_line("##source=benchmarks/somatic_sample.py")
    header.add_line(f"##reference=file://{ref.resolve()}")
    for name, seq in contigs:
        header.contigs.add(name, length=len(seq))
    header.add_line('##INFO=<ID=VAF,Number=1,Type=Float,Description="Expected allele fraction '
                    'in the tumour reads: purity * CF / 2">')
    header.add_line('##INFO=<ID=CF,Number=1,Type=Float,Description="Fraction of the tumour '
                    'cells that carry the variant">')
    header.add_line('##INFO=<ID=LEVEL,Number=1,Type=Integer,Description="Clone level: 0 clonal, '
                    '1-3 nested subclones">')
    header.add_line('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
    header.add_sample("TUMOUR")
    order = {name: i for i, (name, _) in enumerate(contigs)}
    vafs = level_vafs(purity)
    rows = sorted(zip(variants, levels.tolist(), strict=True),
                  key=lambda x: (order[x[0].contig], x[0].pos, x[0].ref, x[0].alt))
    with pysam.VariantFile(os.fspath(path), "wz", header=header) as vcf:
        for v, lv in rows:
            rec = vcf.new_record(contig=v.contig, start=v.pos - 1, alleles=(v.ref, v.alt))
            rec.info["VAF"] = round(vafs[lv], 6)
            rec.info["CF"] = round(CELL_FRACTIONS[lv], 6)
            rec.info["LEVEL"] = lv
            rec.samples["TUMOUR"]["GT"] = v.genotype
            rec.samples["TUMOUR"].phased = True
            vcf.write(rec)
    pysam.tabix_index(os.fspath(path), preset="vcf", force=True)


def _link_reference(ref: Path, out: Path, contigs: list[tuple[str, str]]) -> None:
    dst = out / "ref.fa"
    for p in (dst, out / "ref.fa.fai"):
        p.unlink(missing_ok=True)
    src = ref.resolve()
    if src.suffix in (".gz", ".bgz"):  # a compressed FASTA: write a plain copy
        with open(dst, "w") as fh:
            for name, seq in contigs:
                fh.write(f">{name}\n")
                fh.writelines(seq[i : i + 80] + "\n" for i in range(0, len(seq), 80))
    else:
        dst.symlink_to(src)
        fai = Path(f"{src}.fai")
        if fai.exists() and fai.stat().st_mtime >= src.stat().st_mtime:
            (out / "ref.fa.fai").symlink_to(fai)
            return
    pysam.faidx(os.fspath(dst))


def _params(ref: Path, genome_length: int, normal_pairs: int, tumour_pairs: int,
            purity: float, somatic_rate: float, seed: int) -> dict[str, object]:
    return {
        "schema": SCHEMA, "reference": os.fspath(ref.resolve()), "genome_length": genome_length,
        "normal_pairs": normal_pairs, "tumour_pairs": tumour_pairs, "purity": purity,
        "somatic_rate": somatic_rate, "seed": seed, "germline_rate": GERMLINE_RATE,
        "indel_fraction": INDEL_FRACTION, "somatic_gap": SOMATIC_GAP,
        "cell_fractions": list(CELL_FRACTIONS), "level_shares": list(LEVEL_SHARES),
        "read_length": READ_LENGTH, "insert_mean": INSERT_MEAN,
    }


def _reusable(out: Path, ref: Path, params: dict[str, object]) -> dict[str, object] | None:
    meta = out / "sample.json"
    if not meta.exists():
        return None
    try:
        info = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    if info.get("params") != params:
        return None
    newest_input = max(ref.stat().st_mtime, ref.resolve().stat().st_mtime)
    for name in OUTPUTS:
        p = out / name
        if not p.exists() or p.stat().st_mtime < newest_input:
            return None
    return info


def _count(variants: list[Variant]) -> dict[str, int]:
    indels = sum(len(v.ref) != len(v.alt) for v in variants)
    return {"total": len(variants), "snv": len(variants) - indels, "indel": indels}


def make_somatic_sample(ref: str | os.PathLike[str] = DEFAULT_REFERENCE,
                        out: str | os.PathLike[str] = "somatic",
                        normal_pairs: int | None = None, tumour_pairs: int | None = None,
                        purity: float = 0.6, somatic_rate: float = 1e-4, seed: int = 1,
                        force: bool = False, verbose: bool = True) -> dict[str, object]:
    """Writes the tumour/normal pair into ``out`` (or reuses it) and returns sample.json's
    content: ``params``, ``counts``, ``levels`` (vaf, cell fraction, counts per level),
    ``components`` (tumour pairs per cell population), ``files`` and ``elapsed_s``.

    ``normal_pairs``/``tumour_pairs`` default to 30x/60x of the reference.
    """
    if not 0 < purity <= 1:
        raise ValueError("purity must be in (0, 1]")
    if somatic_rate < 0:
        raise ValueError("somatic_rate must be >= 0")
    ref_path = Path(ref)
    out_dir = Path(out)
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        if verbose:
            print(f"[somatic_sample {time.perf_counter() - t0:6.1f}s] {msg}", file=sys.stderr,
                  flush=True)

    fai = Path(f"{ref_path.resolve()}.fai")
    if fai.exists() and not ref_path.name.endswith((".gz", ".bgz")):
        genome_length = sum(int(ln.split("\t")[1]) for ln in fai.read_text().splitlines() if ln)
        contigs: list[tuple[str, str]] | None = None
    else:
        contigs = read_fasta(ref_path)
        genome_length = sum(len(s) for _, s in contigs)
    if normal_pairs is None:
        normal_pairs = default_pairs(genome_length, NORMAL_DEPTH)
    if tumour_pairs is None:
        tumour_pairs = default_pairs(genome_length, TUMOUR_DEPTH)
    params = _params(ref_path, genome_length, normal_pairs, tumour_pairs, purity, somatic_rate,
                     seed)
    if not force and (info := _reusable(out_dir, ref_path, params)) is not None:
        say(f"reusing {out_dir} (same parameters, newer than the reference)")
        return info

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "sample.json").unlink(missing_ok=True)
    if contigs is None:
        contigs = read_fasta(ref_path)
    _link_reference(ref_path, out_dir, contigs)
    germ_haps, germline = plant_variants(contigs, rate=GERMLINE_RATE,
                                         indel_fraction=INDEL_FRACTION, ploidy=2,
                                         seed=_seed(seed, 1))
    somatic, dropped = somatic_variants(contigs, germline, somatic_rate, seed)
    levels = assign_levels(len(somatic), seed)
    say(f"{len(germline)} germline, {len(somatic)} somatic variants "
        f"({dropped} dropped near germline ones)")
    write_truth_vcf(out_dir / "germline.vcf.gz", out_dir / "ref.fa", germline, sample="NORMAL")
    write_somatic_vcf(out_dir / "somatic.vcf.gz", out_dir / "ref.fa", contigs, somatic, levels,
                      purity)

    r1, r2 = _simulate(germ_haps, normal_pairs, seed, 0, "n")
    say(f"normal: {normal_pairs:,} pairs simulated")
    _write_shuffled(out_dir, "normal", r1, r2, _seed(seed, 5))
    del r1, r2
    say("normal: written")

    # the tumour: normal cells, then the cell populations that carry levels 0..k exactly
    cf = [*CELL_FRACTIONS, 0.0]
    weights = [1.0 - purity] + [purity * (cf[k] - cf[k + 1]) for k in range(len(CELL_FRACTIONS))]
    pairs = _apportion(tumour_pairs, weights)
    order = {name: i for i, (name, _) in enumerate(contigs)}
    r1, r2 = _simulate(germ_haps, pairs[0], seed, 1, "t0")
    components = [{"cells": "normal", "weight": weights[0], "pairs": pairs[0]}]
    for k in range(len(CELL_FRACTIONS)):
        carried = [v for v, lv in zip(somatic, levels.tolist(), strict=True) if lv <= k]
        variants = sorted(germline + carried, key=lambda v: (order[v.contig], v.pos))
        haps = apply_variants(contigs, variants, ploidy=2)
        a, b = _simulate(haps, pairs[k + 1], seed, 2 + k, f"t{k + 1}")
        r1 += a
        r2 += b
        components.append({"cells": f"tumour, levels 0-{k}", "weight": weights[k + 1],
                           "pairs": pairs[k + 1]})
    del a, b
    say(f"tumour: {tumour_pairs:,} pairs simulated")
    _write_shuffled(out_dir, "tumour", r1, r2, _seed(seed, 6))
    del r1, r2
    say("tumour: written")

    vafs = level_vafs(purity)
    per_level = []
    for k in range(len(CELL_FRACTIONS)):
        vs = [v for v, lv in zip(somatic, levels.tolist(), strict=True) if lv == k]
        per_level.append({"level": k, "vaf": vafs[k], "cell_fraction": CELL_FRACTIONS[k],
                          **_count(vs)})
    het = sum(len(set(v.genotype)) > 1 for v in germline)
    info = {
        "params": params,
        "counts": {"germline": {**_count(germline), "het": het, "hom": len(germline) - het},
                   "somatic": _count(somatic), "somatic_dropped_near_germline": dropped},
        "levels": per_level,
        "components": components,
        "files": {name: os.fspath((out_dir / name).resolve()) for name in OUTPUTS},
        "elapsed_s": round(time.perf_counter() - t0, 1),
    }
    tmp = out_dir / ".sample.json.tmp"
    tmp.write_text(json.dumps(info, indent=1) + "\n")
    tmp.replace(out_dir / "sample.json")  # last: its presence marks a complete sample
    say(f"done in {out_dir}")
    return info


# A population resource (make_population_resource): the share of the sample's germline alleles
# it holds (the rest are private to the sample), the share of its somatic alleles it holds too
# (recurrent sites seen, rarely, in other people), unrelated alleles per base, and the ranges of
# log10 population frequency each is drawn from (uniformly).
POPULATION_GERMLINE_SHARE = 0.95
POPULATION_SOMATIC_SHARE = 0.02
POPULATION_OTHERS_PER_BASE = 0.01
POPULATION_LOG10_AF = {"germline": (-4.0, math.log10(0.9)), "somatic": (-6.0, -4.0),
                       "others": (-6.0, math.log10(0.5))}
POPULATION_VERSION = 2  # in the file's name: bump when what it holds changes


def make_population_resource(sample_dir: str | os.PathLike[str], seed: int = 1) -> Path:
    """DIR/population-vN.vcf.gz (+ .tbi): a germline resource for the sample, as gnomAD is for
    a person (sites-only, INFO/AF). It holds POPULATION_GERMLINE_SHARE of the sample's germline
    alleles, POPULATION_SOMATIC_SHARE of its somatic ones at rare frequencies, and unrelated
    SNVs at POPULATION_OTHERS_PER_BASE, within the ranges of POPULATION_LOG10_AF. Somatic and
    unrelated alleles are log-uniform there. A germline allele's frequency p is drawn as the
    sample's genotype implies: from a site-frequency prior proportional to 1/p (the neutral
    spectrum) times the chance of the genotype, 2p(1-p) for a heterozygote and p^2 for a
    homozygote, so that, as in people, homozygous alleles are mostly common ones. Made once;
    reused while newer than the truth VCFs."""
    d = Path(sample_dir)
    out = d / f"population-v{POPULATION_VERSION}.vcf.gz"
    germline_vcf, somatic_vcf = d / "germline.vcf.gz", d / "somatic.vcf.gz"
    if (out.exists() and Path(f"{out}.tbi").exists()
            and out.stat().st_mtime > max(germline_vcf.stat().st_mtime,
                                         somatic_vcf.stat().st_mtime)):
        return out
    rng = np.random.default_rng(_seed(seed, 9))

    def frequencies(kind: str, n: int) -> list[float]:
        lo, hi = POPULATION_LOG10_AF[kind]
        return (10 ** rng.uniform(lo, hi, n)).tolist()

    # on a log grid the 1/p prior is flat, so each point weighs as the genotype's chance there
    lo, hi = POPULATION_LOG10_AF["germline"]
    grid = np.logspace(lo, hi, 4096)
    by_genotype = {False: 2 * grid * (1 - grid), True: grid ** 2}

    def germline_frequency(hom: bool) -> float:
        w = by_genotype[hom]
        return float(rng.choice(grid, p=w / w.sum()))

    rows: list[tuple[str, int, str, str, float]] = []
    for kind, path, share in (("germline", germline_vcf, POPULATION_GERMLINE_SHARE),
                              ("somatic", somatic_vcf, POPULATION_SOMATIC_SHARE)):
        with pysam.VariantFile(os.fspath(path)) as vf:
            alleles = [((r.contig, r.pos, r.ref, a),
                        sum(1 for g in r.samples[0]["GT"] if g == i) == 2)
                       for r in vf for i, a in enumerate(r.alts or (), 1)]
        kept = [a for a, keep in zip(alleles, rng.random(len(alleles)) < share, strict=True)
                if keep]
        if kind == "germline":
            rows += [(*a, germline_frequency(hom)) for a, hom in kept]
        else:
            rows += [(*a, f) for (a, _), f in zip(kept, frequencies(kind, len(kept)),
                                                  strict=True)]
    fasta = pysam.FastaFile(os.fspath(d / "ref.fa"))
    taken = {(c, p) for c, p, *_ in rows}
    for name, length in zip(fasta.references, fasta.lengths, strict=True):
        n = int(rng.poisson(length * POPULATION_OTHERS_PER_BASE))
        seq = fasta.fetch(name).upper()
        for pos, f in zip(rng.integers(1, length + 1, n).tolist(), frequencies("others", n),
                          strict=True):
            ref = seq[pos - 1]
            if ref not in "ACGT" or (name, pos) in taken:
                continue
            taken.add((name, pos))
            rows.append((name, pos, ref, str(rng.choice([b for b in "ACGT" if b != ref])), f))
    header = pysam.VariantHeader()
    for name, length in zip(fasta.references, fasta.lengths, strict=True):
        header.contigs.add(name, length=length)
    header.add_line('##INFO=<ID=AF,Number=A,Type=Float,Description="Population allele '
                    'frequency (simulated)">')
    order = {n: i for i, n in enumerate(fasta.references)}
    tmp = d / f"population-v{POPULATION_VERSION}.tmp.vcf.gz"
    with pysam.VariantFile(os.fspath(tmp), "wz", header=header) as vf:
        for contig, pos, ref, alt, f in sorted(rows, key=lambda r: (order[r[0]], r[1], r[3])):
            rec = vf.new_record(contig=contig, start=pos - 1, alleles=(ref, alt))
            rec.info["AF"] = f
            vf.write(rec)
    pysam.tabix_index(os.fspath(tmp), preset="vcf", force=True)
    os.replace(f"{tmp}.tbi", f"{out}.tbi")
    os.replace(tmp, out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", default=os.fspath(DEFAULT_REFERENCE),
                    help="reference FASTA (default: the shared kp genome)")
    ap.add_argument("--out", default="somatic", help="output directory (./somatic)")
    ap.add_argument("--normal-pairs", type=int,
                    help=f"normal read pairs (default: {NORMAL_DEPTH:.0f}x of the reference)")
    ap.add_argument("--tumour-pairs", type=int,
                    help=f"tumour read pairs (default: {TUMOUR_DEPTH:.0f}x of the reference)")
    ap.add_argument("--purity", type=float, default=0.6,
                    help="share of tumour cells in the tumour sample (0.6)")
    ap.add_argument("--somatic-rate", type=float, default=1e-4,
                    help="somatic variants planted per base, before those near germline "
                         "variants are dropped (1e-4)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--force", action="store_true", help="rebuild even when reusable")
    ap.add_argument("--quiet", "-q", action="store_true")
    args = ap.parse_args(argv)
    for name in ("normal_pairs", "tumour_pairs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    try:
        info = make_somatic_sample(args.reference, args.out, args.normal_pairs,
                                   args.tumour_pairs, args.purity, args.somatic_rate, args.seed,
                                   force=args.force, verbose=not args.quiet)
    except ValueError as e:
        ap.error(str(e))
    print(json.dumps({"counts": info["counts"], "levels": info["levels"],
                      "elapsed_s": info["elapsed_s"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
