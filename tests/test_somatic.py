"""Somatic calling (caller.cpp's somatic_window, somatic.cpp, Caller(somatic=True), call
--somatic): the allele-fraction statistics against a numpy definition, and a simulated tumour
(germline variants plus somatic ones at a known fraction of its reads) against its normal."""

from __future__ import annotations

import json
import math
import random
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pysam
import pysam.bcftools
import pytest
from conftest import random_genome, run_cli, write_fasta, write_reads_bam
from hypothesis import given, settings
from hypothesis import strategies as st

from gmsaccel import _core
from gmsaccel.align import Aligner, Index
from gmsaccel.call import Caller
from gmsaccel.simulate import (
    Variant,
    apply_variants,
    plant_variants,
    simulate_pairs,
    write_fastq,
    write_truth_vcf,
)
from gmsaccel.tumour_in_normal import estimate_tumour_in_normal, vcf_tumour_in_normal
from gmsaccel.vcf import VcfWriter

needs_engine = pytest.mark.skipif(not hasattr(_core, "somatic_score"),
                                  reason="somatic calling not in this build")

# ---------------------------------------------------------------------------------------------
# the statistics


def ratio(alt: np.ndarray, ref: np.ndarray, f: float) -> float:
    """log10 prod (f alt + (1 - f) ref) / prod ref: somatic.hpp's definition."""
    return float(np.sum(np.log10(f * (alt / ref) + (1 - f))))


likelihoods = st.lists(st.tuples(st.floats(1e-30, 1.0), st.floats(1e-30, 1.0)), min_size=0,
                       max_size=60)


@needs_engine
@settings(max_examples=300, deadline=None)
@given(tumour=likelihoods, normal=likelihoods,
       tin=st.sampled_from([0.0]) | st.floats(0.001, 0.99))
def test_score_is_the_mixture_definition(tumour: list, normal: list, tin: float) -> None:
    t = np.array(tumour, dtype=np.float64).reshape(-1, 2)
    n = np.array(normal, dtype=np.float64).reshape(-1, 2)
    s = _core.somatic_score(t[:, 0].tolist(), t[:, 1].tolist(), n[:, 0].tolist(),
                            n[:, 1].tolist(), tumour_in_normal=tin)
    grid = np.linspace(0, 1, 2001)
    # the normal as a somatic allele leaves it: at tin times the tumour's fraction (0: none);
    # a carrier's at 1/2 in its own cells, and at the tumour's fraction in the tumour's
    ft = s["tumour_fraction"]
    somatic = ratio(n[:, 0], n[:, 1], tin * ft)
    carrier = 0.5 + tin * (ft - 0.5)
    for (alt, ref), f, lod, base, one_sided in (
            (t.T, ft, s["tlod"], 0.0, False),
            (n.T, s["normal_fraction"], s["normal_alod"], somatic, tin > 0)):
        assert 0 <= f <= 1
        # (normal_alod one-sided: none for a normal showing no more than the tumour's cells)
        want = 0.0 if one_sided and f <= tin * ft else \
            max(0.0, ratio(alt, ref, f) - base)
        assert lod == pytest.approx(want, abs=1e-9)
        # the fitted fraction is the maximum: no point of a fine grid beats it
        best = max(ratio(alt, ref, g) for g in grid)
        assert ratio(alt, ref, f) >= best - 1e-6 * max(1.0, abs(best))
        assert lod >= 0  # f = 0 gives 0
    assert s["nlod"] == pytest.approx(somatic - ratio(n[:, 0], n[:, 1], carrier), abs=1e-9)


def log10_mixture(lik: np.ndarray, f: np.ndarray) -> float:
    return float(np.sum(np.log10(lik @ f))) if len(lik) else 0.0


@needs_engine
@settings(max_examples=200, deadline=None)
@given(k=st.integers(2, 4), rows=st.lists(st.lists(st.floats(1e-6, 1.0), min_size=4,
                                                     max_size=4), max_size=40),
       hold=st.one_of(st.none(), st.tuples(st.integers(0, 3), st.floats(0, 1))),
       seed=st.integers(0, 2**16))
def test_fit_is_the_mixture_maximum(k: int, rows: list, hold: tuple | None, seed: int) -> None:
    lik = np.array(rows, dtype=np.float64).reshape(-1, 4)[:, :k]
    fixed = [-1.0] * k
    if hold is not None:
        fixed[hold[0] % k] = hold[1]
    f, ll = _core.fit_fractions(lik, fixed)
    f = np.array(f)
    assert np.all(f >= 0) and f.sum() == pytest.approx(1.0, abs=1e-9)
    if hold is not None:
        assert f[hold[0] % k] == hold[1]
    assert ll == pytest.approx(log10_mixture(lik, f), abs=1e-9)
    # no point of the simplex (with the held component held) does better
    rng = np.random.default_rng(seed)
    free = [j for j in range(k) if fixed[j] < 0]
    mass = 1 - sum(v for v in fixed if v >= 0)
    for _ in range(200):
        g = np.array([max(v, 0.0) for v in fixed])
        g[free] = rng.dirichlet(np.ones(len(free))) * mass
        assert log10_mixture(lik, g) <= ll + 1e-6 * max(1.0, abs(ll))


@needs_engine
def test_score_of_plain_evidence() -> None:
    # 30 reads: 6 carry the allele (1000 times likelier under it), 24 the reference
    alt = [1.0] * 6 + [1e-3] * 24
    ref = [1e-3] * 6 + [1.0] * 24
    s = _core.somatic_score(alt, ref)
    assert s["tumour_fraction"] == pytest.approx(0.2, abs=0.01)
    assert s["tlod"] > 10
    assert s["normal_fraction"] == 0 and s["nlod"] == 0  # no normal
    # a normal of 20 reference reads: about 20 log10(2) of confidence that it is no carrier
    n = _core.somatic_score(alt, ref, [1e-3] * 20, [1.0] * 20)
    assert n["nlod"] == pytest.approx(20 * math.log10(2 / 1.001), abs=1e-6)
    assert n["normal_fraction"] == 0 and n["normal_alod"] == 0
    # reads that tell nothing apart fit nothing
    flat = _core.somatic_score([0.5] * 10, [0.5] * 10, [0.5] * 3, [0.5] * 3)
    assert flat["tumour_fraction"] == 0 and flat["tlod"] == 0
    # (never -0: a VCF would say "-0")
    assert all(math.copysign(1, flat[k]) == 1 for k in ("tlod", "nlod", "normal_alod"))
    with pytest.raises(ValueError, match="above 0"):
        _core.somatic_score([0.0], [1.0])
    with pytest.raises(ValueError, match="one of each"):
        _core.somatic_score([1.0, 1.0], [1.0])


def binomial_two_sided(x: int, k: int, q: float) -> float:
    pmf = [math.comb(k, i) * q**i * (1 - q) ** (k - i) for i in range(k + 1)]
    return min(1.0, 2 * min(sum(pmf[: x + 1]), sum(pmf[x:])))


@needs_engine
@settings(max_examples=300, deadline=None)
@given(alt_fwd=st.integers(0, 40), alt_rev=st.integers(0, 40), depth_fwd=st.integers(0, 300),
       depth_rev=st.integers(0, 300))
def test_strand_bias_is_a_two_sided_binomial(alt_fwd: int, alt_rev: int, depth_fwd: int,
                                             depth_rev: int) -> None:
    p = _core.strand_bias_p(alt_fwd, alt_rev, depth_fwd, depth_rev)
    k = alt_fwd + alt_rev
    if k == 0 or depth_fwd == 0 or depth_rev == 0:
        assert p == 1
    else:
        assert p == pytest.approx(binomial_two_sided(alt_fwd, k, depth_fwd / (depth_fwd +
                                                                               depth_rev)),
                                  rel=1e-9, abs=1e-15)
    # lopsided enough to filter at 1e-3: 12 of 12 reads on one strand of an even depth
    assert _core.strand_bias_p(12, 0, 100, 100) < 1e-3 < _core.strand_bias_p(10, 0, 100, 100)


# ---------------------------------------------------------------------------------------------
# a simulated tumour and its normal

NORMAL_DEPTH = 30
TUMOUR_DEPTH = 80
PURITY = 0.6  # the tumour's clonal alleles are in 30% of its reads
SUBCLONE = 0.3  # and a subclone's in 15%


def integrated_definition(lik: np.ndarray, also: np.ndarray | None = None,
                          scale: float = 0.0) -> float:
    """log10 of the integral over f in [0, 1] of prod_r ((1 - f) ref_r + f alt_r), on a dense
    grid: somatic.hpp's log10_integrated_likelihood for one allele beside the reference; with
    also, times the same product of its reads at scale * f."""
    grid = np.linspace(0, 1, 40001)
    ll = np.log10(np.outer(1 - grid, lik[:, 0]) + np.outer(grid, lik[:, 1])).sum(axis=1)
    if also is not None and len(also):
        g = scale * grid
        ll = ll + np.log10(np.outer(1 - g, also[:, 0]) + np.outer(g, also[:, 1])).sum(axis=1)
    top = float(ll.max())
    y = 10 ** (ll - top)
    return top + math.log10(float(np.sum(np.diff(grid) * (y[1:] + y[:-1]) / 2)))


@needs_engine
@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.tuples(st.floats(1e-6, 1.0), st.floats(1e-6, 1.0)), max_size=80))
def test_integrated_likelihood_is_the_integral(rows: list) -> None:
    lik = np.array(rows, dtype=np.float64).reshape(-1, 2)
    got = _core.log10_integrated_likelihood(lik, 1)
    assert got == pytest.approx(integrated_definition(lik), abs=2e-3)
    # never above the fitted maximum (the integral of a likelihood on [0, 1])
    assert got <= _core.fit_fractions(lik)[1] + 1e-9


@needs_engine
@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.tuples(st.floats(1e-4, 1.0), st.floats(1e-4, 1.0)), min_size=1,
                     max_size=60),
       also=st.lists(st.tuples(st.floats(1e-4, 1.0), st.floats(1e-4, 1.0)), max_size=30),
       scale=st.floats(0.0, 1.0))
def test_integrated_likelihood_of_two_samples_is_the_integral(rows: list, also: list,
                                                              scale: float) -> None:
    """A normal holding tumour cells: the tumour's and the normal's likelihoods integrated
    together, the normal's allele at scale times the tumour's fraction."""
    lik = np.array(rows, dtype=np.float64).reshape(-1, 2)
    other = np.array(also, dtype=np.float64).reshape(-1, 2)
    got = _core.log10_integrated_likelihood(lik, 1, other, scale)
    assert got == pytest.approx(integrated_definition(lik, other, scale), abs=3e-3)
    with pytest.raises(ValueError, match="also_scale"):
        _core.log10_integrated_likelihood(lik, 1, other, 1.5)


def origins_definition(t: np.ndarray, n: np.ndarray | None, p: float, log10_prior: float,
                       c: float, tin: float = 0.0) -> dict[str, float]:
    """somatic.hpp's allele_origins for one allele beside the reference, from numpy."""
    def at(lik: np.ndarray | None, f: float) -> float:
        if lik is None or not len(lik):
            return 0.0
        return float(np.log10((1 - f) * lik[:, 0] + f * lik[:, 1]).sum())

    het_prior, hom_prior, lacks = 2 * p * (1 - p), p * p, (1 - p) ** 2
    other = (lacks, het_prior, hom_prior)  # the contaminating person's 0, 1, 2 copies

    def carrier(own: float) -> float:  # the tumour's reads, diluted by the other person's
        if c == 0:
            return at(t, own)
        terms = [math.log10(other[h]) + at(t, (1 - c) * own + c * h / 2) for h in range(3)]
        top = max(terms)
        return top + math.log10(sum(10 ** (x - top) for x in terms))

    terms = {
        "germline": [math.log10(het_prior) + carrier(0.5) + at(n, 0.5),
                     math.log10(hom_prior) + carrier(1.0) + at(n, 1.0)],
        # (a normal holding the tumour's cells shows a somatic allele at tin of its fraction)
        "somatic": [math.log10(lacks) + log10_prior + (
            integrated_definition(t, n, tin) if tin > 0 and n is not None
            else integrated_definition(t) + at(n, 0.0))],
    }
    if c > 0:
        terms["contamination"] = [math.log10(lacks) + math.log10(het_prior) + at(t, c / 2)
                                  + at(n, 0.0),
                                  math.log10(lacks) + math.log10(hom_prior) + at(t, c)
                                  + at(n, 0.0)]
    absent = 2 * math.log10(lacks) + at(t, 0.0) + at(n, 0.0)  # neither person carries it
    top = max(absent, *(x for v in terms.values() for x in v))
    weight = {k: sum(10 ** (x - top) for x in v) for k, v in terms.items()}
    total = sum(weight.values())
    out = {k: weight.get(k, 0.0) / total for k in ("germline", "somatic")}
    # (contamination weighed against the allele being absent too)
    out["contamination"] = weight.get("contamination", 0.0) / (total + 10 ** (absent - top))
    return out


@needs_engine
@settings(max_examples=150, deadline=None)
@given(tumour=st.lists(st.tuples(st.floats(1e-4, 1.0), st.floats(1e-4, 1.0)), max_size=60),
       normal=st.none() | st.lists(st.tuples(st.floats(1e-4, 1.0), st.floats(1e-4, 1.0)),
                                   max_size=30),
       p=st.floats(1e-9, 0.99), prior=st.floats(-9, -1),
       c=st.sampled_from([0.0]) | st.floats(0.001, 0.45),
       tin=st.sampled_from([0.0]) | st.floats(0.001, 0.9))
def test_allele_origins_are_their_definition(tumour: list, normal: list | None, p: float,
                                             prior: float, c: float, tin: float) -> None:
    t = np.array(tumour, dtype=np.float64).reshape(-1, 2)
    n = None if normal is None else np.array(normal, dtype=np.float64).reshape(-1, 2)
    got = _core.allele_origins(t, n, 1, p, prior, c, tin)
    want = origins_definition(t, n, p, prior, c, tin)
    for origin in ("germline", "contamination"):
        assert 0 <= got[origin] <= 1
        assert got[origin] == pytest.approx(want[origin], abs=3e-3), origin
    assert c > 0 or got["contamination"] == 0


@needs_engine
def test_allele_origins_weigh_frequency_fraction_and_contamination() -> None:
    """60 reads, each clearly the allele's or the reference's: an allele in half of them is
    germline unless the population never shows it; in 30% it is somatic unless common. In 400
    reads, a common allele in 2.5% of them is somatic, or, with 5% of the reads from another
    person, that person's; alleles far from its fractions stay somatic."""
    def reads(n: int, carriers: int) -> np.ndarray:
        return np.array([[1e-3, 1.0]] * carriers + [[1.0, 1e-3]] * (n - carriers))

    def germline(lik: np.ndarray, p: float, normal: np.ndarray | None = None) -> float:
        return _core.allele_origins(lik, normal, 1, p)["germline"]

    half, third = reads(60, 30), reads(60, 18)
    assert germline(half, 1e-4) > 0.99
    assert germline(half, 5e-8) < 0.5
    assert germline(third, 1e-5) < 0.5
    assert germline(third, 0.05) > 0.99
    # a normal of 30 reads without the allele makes even a common one somatic
    assert germline(third, 0.05, reads(30, 0)) < 1e-3
    # and one with it in half its reads, germline
    assert germline(third, 1e-6, reads(30, 15)) > 0.99
    def somatic(lik: np.ndarray, p: float, c: float = 0.0) -> bool:
        o = _core.allele_origins(lik, None, 1, p, contamination=c)
        return o["germline"] < 0.01 and o["contamination"] < 0.01

    deep = reads(400, 10)
    assert somatic(deep, 0.3)
    assert _core.allele_origins(deep, None, 1, 0.3, contamination=0.05)["contamination"] > 0.99
    # a weak allele (3 of 52 reads) is no contaminant's at a contamination near 0: the other
    # person's few reads would look like no reads, and errors explain those better
    assert _core.allele_origins(reads(52, 3), None, 1, 0.047, contamination=3e-4)[
        "contamination"] < 0.5
    # far from the contaminant's c/2 and c: a rare allele in 10% of the reads, a common one
    # in 15% (a common allele's somatic prior is low enough for 2c to look like c)
    for p, carriers in ((5e-8, 40), (0.3, 60)):
        assert somatic(reads(400, carriers), p, 0.05)


@dataclass(frozen=True)
class Pair:
    ref: Path
    tumour: Path
    normal: Path
    germline: list[Variant]
    somatic: dict[tuple[str, int, str, str], float]  # allele -> fraction of tumour reads
    somatic_truth: Path
    # a germline resource: allele -> population frequency, and the bgzipped, indexed VCF
    population: dict[tuple[str, int, str, str], float]
    resource: Path
    fastq: dict[str, tuple[Path, Path]]  # the reads of "tumour" and "normal": mates 1 and 2


def _pairs(depth: float, genome: int) -> int:
    return int(depth * genome / 300)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    d = tmp_path_factory.mktemp("somatic")
    contigs = random_genome(71, {"chr1": 40_000, "chr2": 12_000})
    genome = sum(len(s) for _, s in contigs)
    ref = write_fasta(d / "ref.fa", contigs)
    pysam.faidx(str(ref))
    normal_haps, germline = plant_variants(contigs, rate=0.002, ploidy=2, seed=72)
    _, planted = plant_variants(contigs, rate=0.002, indel_fraction=0.2, ploidy=2, seed=73)
    near = {(v.contig, p) for v in germline for p in range(v.pos - 60, v.end + 61)}
    somatic = [Variant(v.contig, v.pos, v.ref, v.alt, (1, 0)) for v in planted
               if (v.contig, v.pos) not in near and (v.contig, v.end) not in near]
    clonal, sub = somatic[::2], somatic[1::2]

    def order(vs: list[Variant]) -> list[Variant]:
        return sorted(vs, key=lambda v: (v.contig, v.pos))

    clone_haps = apply_variants(contigs, order(germline + clonal))
    subclone_haps = apply_variants(contigs, order(germline + clonal + sub))
    n1, n2 = simulate_pairs(normal_haps, _pairs(NORMAL_DEPTH, genome), seed=74)
    reads1, reads2 = [], []
    for tag, haps, share, seed in (("n", normal_haps, 1 - PURITY, 75),
                                   ("c", clone_haps, PURITY - SUBCLONE, 76),
                                   ("s", subclone_haps, SUBCLONE, 77)):
        a, b = simulate_pairs(haps, _pairs(TUMOUR_DEPTH * share, genome), seed=seed)
        reads1 += [(tag + name, s, q) for name, s, q in a]
        reads2 += [(tag + name, s, q) for name, s, q in b]
    index = Index.build(ref)
    bams, fastq = {}, {}
    for name, r1, r2 in (("normal", n1, n2), ("tumour", reads1, reads2)):
        f1 = write_fastq(d / f"{name}_1.fq", r1)
        f2 = write_fastq(d / f"{name}_2.fq", r2)
        fastq[name] = (f1, f2)
        bams[name] = d / f"{name}.bam"
        Aligner(index, threads=2).align_fastq(f1, f2, bams[name],
                                              read_group=rf"@RG\tID:{name}\tSM:{name.upper()}")
    fraction = {**{(v.contig, v.pos, v.ref, v.alt): PURITY / 2 for v in clonal},
                **{(v.contig, v.pos, v.ref, v.alt): SUBCLONE / 2 for v in sub}}
    truth = write_truth_vcf(d / "somatic.vcf.gz", ref, order(somatic))
    clonal_alleles = sorted(k for k, f in fraction.items() if f == PURITY / 2)
    population, resource = write_resource(d / "resource.vcf.gz", ref, germline,
                                          clonal_alleles[:2])
    return Pair(ref, bams["tumour"], bams["normal"], germline, fraction, truth, population,
                resource, fastq)


def write_resource(path: Path, ref: Path, germline: list[Variant],
                   common: list[tuple[str, int, str, str]]
                   ) -> tuple[dict[tuple[str, int, str, str], float], Path]:
    """A germline resource as gnomAD's: every germline allele at a population frequency
    between 1e-3 and 0.5, and the `common` somatic alleles at 0.2 (as if germline elsewhere).
    The first SNV is written with the base before it on both alleles, as some resources spell
    alleles: it must still be found."""
    rng = random.Random(81)
    population = {(v.contig, v.pos, v.ref, v.alt): 10 ** rng.uniform(-3, math.log10(0.5))
                  for v in germline}
    population.update({a: 0.2 for a in common})
    fasta = pysam.FastaFile(str(ref))
    header = pysam.VariantHeader()
    for name, length in zip(fasta.references, fasta.lengths, strict=True):
        header.contigs.add(name, length=length)
    header.add_line('##INFO=<ID=AF,Number=A,Type=Float,Description="Population frequency">')
    padded = next(k for k in sorted(population) if len(k[2]) == len(k[3]) == 1 and k[1] > 1)
    with pysam.VariantFile(str(path), "wz", header=header) as out:
        order = {n: i for i, n in enumerate(fasta.references)}
        for key in sorted(population, key=lambda k: (order[k[0]], k[1])):
            contig, pos, r, a = key
            if key == padded:
                before = fasta.fetch(contig, pos - 2, pos - 1)
                pos, r, a = pos - 1, before + r, before + a
            rec = out.new_record(contig=contig, start=pos - 1, alleles=(r, a))
            rec.info["AF"] = population[key]
            out.write(rec)
    pysam.tabix_index(str(path), preset="vcf", force=True)
    return population, path


def _alleles(vcf: Path, passed: bool) -> dict[tuple[str, int, str, str], pysam.VariantRecord]:
    """Biallelic (contig, pos, ref, alt) -> record, of the PASS records or the others."""
    out = {}
    with pysam.VariantFile(str(vcf)) as vf:
        for r in vf:
            if ("PASS" in r.filter.keys()) == passed:
                for a in r.alts:
                    out[(r.contig, r.pos, r.ref, a)] = r
    return out


@needs_engine
def test_tumour_against_normal(pair: Pair, tmp_path: Path) -> None:
    out = tmp_path / "somatic.vcf.gz"
    stats = Caller(pair.ref, threads=2, somatic=True).write_vcf([pair.tumour, pair.normal], out)
    assert stats["samples"] == ["TUMOUR", "NORMAL"]
    called = _alleles(out, passed=True)
    assert len(pair.somatic) >= 60
    missed = set(pair.somatic) - set(called)
    false = set(called) - set(pair.somatic)
    assert len(missed) <= 0.03 * len(pair.somatic), sorted(missed)
    assert len(false) <= 1, sorted(false)
    assert stats["pass"] == len(called)
    # the germline variants are all there, filtered, not PASS
    rejected = _alleles(out, passed=False)
    germline = {(v.contig, v.pos, v.ref, v.alt) for v in pair.germline}
    assert not germline & set(called)
    assert len(germline & set(rejected)) >= 0.95 * len(germline)
    assert all("germline" in rejected[g].filter.keys() for g in germline & set(rejected))
    # fractions near the truth (AF), genotypes and depths as the header says
    err = []
    for key, rec in called.items():
        if key not in pair.somatic:
            continue
        t, n = rec.samples["TUMOUR"], rec.samples["NORMAL"]
        assert t["GT"] == (0, 1) and n["GT"] == (0, 0)
        assert rec.info["TLOD"][0] >= 6.3 and rec.info["NLOD"][0] >= 2.2
        assert rec.qual == pytest.approx(10 * rec.info["TLOD"][0], rel=1e-5)
        # (a normal read may show the allele by a base error: 2 of 32 at most here)
        assert t["AD"][1] > 0 and n["AD"][1] <= 2 and n["AF"][0] < 0.1
        assert t["DP"] >= sum(t["AD"])
        err.append(t["AF"][0] - pair.somatic[key])
    assert abs(float(np.mean(err))) < 0.03 and float(np.mean(np.abs(err))) < 0.06, err
    with pysam.VariantFile(str(out)) as vf:
        header = str(vf.header)
    assert "##tumor_sample=TUMOUR" in header and "##normal_sample=NORMAL" in header


@needs_engine
def test_panel_of_normals_filters_its_alleles(pair: Pair, tmp_path: Path) -> None:
    """Alleles of a panel of normals fail panel_of_normals (tumour-only too); the other
    records are as without the panel."""
    somatic = sorted(pair.somatic)[:3]
    panel = [Variant(c, p, r, a, (0, 1)) for c, p, r, a in somatic]
    panel.append(pair.germline[0])
    pon = write_truth_vcf(tmp_path / "pon.vcf.gz", pair.ref, panel)
    for bams in ([pair.tumour, pair.normal], [pair.tumour]):
        plain, marked = tmp_path / "plain.vcf", tmp_path / "pon.vcf"
        Caller(pair.ref, somatic=True).write_vcf(bams, plain)
        Caller(pair.ref, somatic=True, panel_of_normals=pon).write_vcf(bams, marked)
        before = {(r.contig, r.pos, r.ref, r.alts[0]): r for r in records_of(plain)}
        after = {(r.contig, r.pos, r.ref, r.alts[0]): r for r in records_of(marked)}
        assert before.keys() == after.keys()
        in_panel = {(v.contig, v.pos, v.ref, v.alt) for v in panel}
        assert set(somatic) <= in_panel & after.keys()
        for key, r in after.items():
            filters = list(before[key].filter.keys())
            if key in in_panel:
                filters = [f for f in filters if f != "PASS"] + ["panel_of_normals"]
            assert sorted(r.filter.keys()) == sorted(filters), (key, r)
        with pysam.VariantFile(str(marked)) as vf:
            assert "panel_of_normals" in vf.header.filters
    with pytest.raises(ValueError, match="goes with somatic"):
        Caller(pair.ref, panel_of_normals=pon)


@needs_engine
def test_tumour_only_keeps_germline(pair: Pair, tmp_path: Path) -> None:
    """Without a normal, germline alleles are alleles the tumour carries: PASS too."""
    out = tmp_path / "tumour_only.vcf.gz"
    Caller(pair.ref, somatic=True).write_vcf(pair.tumour, out)
    called = _alleles(out, passed=True)
    germline = {(v.contig, v.pos, v.ref, v.alt) for v in pair.germline}
    assert len(set(pair.somatic) - set(called)) <= 0.03 * len(pair.somatic)
    assert len(germline - set(called)) <= 0.05 * len(germline)
    with pysam.VariantFile(str(out)) as vf:
        assert list(vf.header.samples) == ["TUMOUR"]
        assert "NLOD" not in vf.header.info and "germline" not in vf.header.filters


@needs_engine
def test_germline_resource_tells_germline_apart_without_a_normal(pair: Pair,
                                                                 tmp_path: Path) -> None:
    """Tumour-only with a germline resource: its germline alleles fail germline, the somatic
    ones pass, but for two clonal ones the population shares commonly (at 30% of the reads,
    nearer a heterozygote's half than a subclone's fraction would be); POPAF is the resource's
    frequency (its -log10 written to 6 digits) or af_not_in_resource, GERMQ its posterior.
    Beside a normal, the normal clears the common somatic alleles and the records are those
    without the resource."""
    out = tmp_path / "resource.vcf.gz"
    Caller(pair.ref, threads=2, somatic=True, germline_resource=pair.resource).write_vcf(
        pair.tumour, out)
    records = {(r.contig, r.pos, r.ref, r.alts[0]): r for r in records_of(out)}
    germline = {(v.contig, v.pos, v.ref, v.alt) for v in pair.germline}
    common = {k for k in pair.somatic if pair.population.get(k) == 0.2}
    assert len(common) == 2
    seen = germline & records.keys()
    assert len(seen) >= 0.95 * len(germline)
    assert all("germline" in records[k].filter.keys() for k in seen)
    passed = {k for k, r in records.items() if "PASS" in r.filter.keys()}
    assert len(set(pair.somatic) - common - passed) <= 0.03 * len(pair.somatic)
    assert not passed & (germline | common)
    for key, r in records.items():
        popaf = 10 ** -r.info["POPAF"][0]  # (-log10, as Mutect2 writes it)
        assert popaf == pytest.approx(pair.population.get(key, 5e-8), rel=1e-4), key
        germq = r.info["GERMQ"][0]
        assert ("germline" in r.filter.keys()) == (germq < -10 * math.log10(0.5)), (key, germq)
    with pysam.VariantFile(str(out)) as vf:
        assert "germline" in vf.header.filters and "POPAF" in vf.header.info
        assert any(line.key == "germline_resource" for line in vf.header.records)
    # beside the normal: the same records; the resource adds INFO and, at most, germline
    plain, marked = tmp_path / "tn.vcf", tmp_path / "tn_resource.vcf"
    bams = [pair.tumour, pair.normal]
    Caller(pair.ref, threads=2, somatic=True).write_vcf(bams, plain)
    Caller(pair.ref, threads=2, somatic=True, germline_resource=pair.resource).write_vcf(
        bams, marked)
    before = {(r.contig, r.pos, r.ref, r.alts[0]): r for r in records_of(plain)}
    after = {(r.contig, r.pos, r.ref, r.alts[0]): r for r in records_of(marked)}
    assert before.keys() == after.keys()
    for key, r in after.items():
        extra = set(r.filter.keys()) - set(before[key].filter.keys())
        assert extra <= {"germline"}, (key, extra)
    assert common <= {k for k, r in after.items() if "PASS" in r.filter.keys()}


@needs_engine
def test_germline_resource_errors(pair: Pair, tmp_path: Path) -> None:
    """A resource must be indexed and give AF, each in [0, 1]: else an error naming the file
    (and the record), before any work or at the shard that reads it; nothing at the output."""
    plain = tmp_path / "plain.vcf"
    plain.write_bytes(pysam.bcftools.view(str(pair.resource), "-Ov").encode())
    with pytest.raises(_core.InputError, match="bgzip it and index it"):
        Caller(pair.ref, somatic=True, germline_resource=plain)
    no_af = write_truth_vcf(tmp_path / "no_af.vcf.gz", pair.ref, pair.germline[:3])
    with pytest.raises(_core.InputError, match="INFO/AF"):
        Caller(pair.ref, somatic=True, germline_resource=no_af)
    text = pysam.bcftools.view(str(pair.resource), "-Ov")
    first = next(ln for ln in text.splitlines() if not ln.startswith("#"))
    chrom, pos = first.split("\t")[:2]
    broken = tmp_path / "broken.vcf"
    broken.write_text(text.replace(first, first.split("AF=")[0] + "AF=1.5", 1))
    pysam.tabix_index(str(broken), preset="vcf", force=True)
    target = tmp_path / "bad.vcf.gz"
    proc = run_cli("call", "-f", pair.ref, "--somatic", pair.tumour, "--germline-resource",
                   str(broken) + ".gz", "-o", target)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "Traceback" not in err, err
    assert f"broken.vcf.gz: record ({chrom}:{pos}): INFO/AF 1.5" in err, err
    assert not target.exists()
    worded = tmp_path / "worded.vcf"
    worded.write_text(text.replace(first, first.split("AF=")[0] + "AF=high", 1))
    pysam.tabix_index(str(worded), preset="vcf", force=True)
    with pytest.raises(_core.InputError, match=f"worded.vcf.gz: record \\({chrom}:{pos}\\): "
                                               "INFO/AF high is not a frequency"):
        Caller(pair.ref, somatic=True, germline_resource=str(worded) + ".gz").write_vcf(
            pair.tumour, target)
    assert not target.exists()
    with pytest.raises(_core.InputError, match="is a directory"):
        Caller(pair.ref, somatic=True, germline_resource=tmp_path)
    for option in ({"af_not_in_resource": 1e-6}, {"contamination": 0.02}):
        with pytest.raises(ValueError, match="go with germline_resource"):
            Caller(pair.ref, somatic=True, **option)
    for bad in (-0.1, 0.5):
        with pytest.raises(ValueError, match="somatic thresholds"):
            Caller(pair.ref, somatic=True, germline_resource=pair.resource, contamination=bad)
    renamed = tmp_path / "renamed.vcf"
    renamed.write_text(text.replace("chr1", "1").replace("chr2", "2"))
    pysam.tabix_index(str(renamed), preset="vcf", force=True)
    with pytest.raises(_core.InputError, match="none of its contigs .* is it the same build"):
        Caller(pair.ref, somatic=True, germline_resource=str(renamed) + ".gz")
    for args, needle in (
            (["--germline-resource", pair.resource, pair.tumour], "goes with --somatic"),
            (["--somatic", "--af-not-in-resource", "1e-6", pair.tumour],
             "goes with --germline-resource"),
            (["--somatic", "--contamination", "0.02", pair.tumour],
             "goes with --germline-resource"),
            (["--somatic", "--germline-resource", pair.resource, "--af-not-in-resource", "0",
              pair.tumour], "somatic thresholds")):
        proc = run_cli("call", "-f", pair.ref, *args, "-o", target)
        err = proc.stderr.decode()
        assert proc.returncode == 1 and needle in err and "Traceback" not in err, err
        assert not target.exists()


@needs_engine
def test_a_contaminated_tumour(tmp_path: Path) -> None:
    """A deep tumour (400x) whose reads are 5% another person's: that person's alleles the
    patient lacks sit at 2.5% or 5%, and the patient's homozygous alleles a little below 1, and
    both pass as somatic ones with only the germline resource; with the contamination (as
    gmsaccel.contamination estimates it from the same BAM) the first fail contamination and the
    second germline, while somatic alleles at 10% still pass."""
    from gmsaccel.contamination import estimate_contamination

    length = 30_000
    seq, ref, rng = synthetic_reference(tmp_path, 101, length)
    nprng = np.random.default_rng(102)
    sites = list(range(150, length - 150, 97))
    p = nprng.uniform(0.1, 0.9, len(sites))
    alts = {x: "ACGT"[("ACGT".index(seq[x]) + 1 + rng.randrange(3)) % 4] for x in sites}
    header = pysam.VariantHeader()
    header.contigs.add("chr1", length=length)
    header.add_line('##INFO=<ID=AF,Number=A,Type=Float,Description="Population frequency">')
    resource = tmp_path / "resource.vcf.gz"
    with pysam.VariantFile(str(resource), "wz", header=header) as out:
        for x, f in zip(sites, p.tolist(), strict=True):
            rec = out.new_record(contig="chr1", start=x, alleles=(seq[x], alts[x]))
            rec.info["AF"] = f
            out.write(rec)
    pysam.tabix_index(str(resource), preset="vcf", force=True)
    genotypes = {who: (nprng.random((len(sites), 2)) < p[:, None]).astype(int)
                 for who in ("patient", "other")}

    def variants(who: str) -> list[Variant]:
        return [Variant("chr1", x + 1, seq[x], alts[x], (int(g[0]), int(g[1])))
                for x, g in zip(sites, genotypes[who], strict=True) if g.any()]

    somatic = [Variant("chr1", x + 1, seq[x], "ACGT"[("ACGT".index(seq[x]) + 2) % 4], (1, 0))
               for x in range(1_000, length - 1_000, 2_800)]
    contigs = [("chr1", seq)]
    pairs = 400 * length // 300
    parts = ((variants("patient"), 0.75, 103), (sorted(variants("patient") + somatic,
                                                       key=lambda v: v.pos), 0.20, 104),
             (variants("other"), 0.05, 105))
    reads1, reads2 = [], []
    for vs, share, seed in parts:
        a, b = simulate_pairs(apply_variants(contigs, vs), int(pairs * share), seed=seed)
        reads1 += [(f"{seed}{n}", s_, q) for n, s_, q in a]
        reads2 += [(f"{seed}{n}", s_, q) for n, s_, q in b]
    bam = tmp_path / "tumour.bam"
    Aligner(Index.build(ref), threads=2).align_fastq(
        write_fastq(tmp_path / "t_1.fq", reads1), write_fastq(tmp_path / "t_2.fq", reads2), bam,
        read_group=r"@RG\tID:t\tSM:TUMOUR")
    est = estimate_contamination(ref, bam, resource, threads=2)
    assert abs(est.fraction - 0.05) < 0.015, est
    carried = {i for i, g in enumerate(genotypes["patient"]) if g.any()}
    foreign = {("chr1", sites[i] + 1, seq[sites[i]], alts[sites[i]])
               for i, g in enumerate(genotypes["other"]) if g.any() and i not in carried}
    truth = {("chr1", v.pos, v.ref, v.alt) for v in somatic}
    assert len(foreign) >= 20 and len(truth) == 10
    passed = {}
    for c in (None, est.fraction):
        out = tmp_path / f"calls-{c}.vcf"
        extra = {"contamination": c} if c else {}
        Caller(ref, threads=2, somatic=True, germline_resource=resource, **extra).write_vcf(
            bam, out)
        passed[c] = set(_alleles(out, passed=True))
    # the problem: the other person's alleles pass as somatic, and so do the patient's
    # homozygous ones, whose reads the other person's reference reads pull below 1
    assert len(passed[None] & foreign) >= 0.5 * len(foreign)
    assert len(passed[None] - truth - foreign) >= 10
    # its answer: only the somatic alleles pass
    assert truth <= passed[None] and truth <= passed[est.fraction]
    assert len(passed[est.fraction] - truth) <= 1, sorted(passed[est.fraction] - truth)
    records = records_of(tmp_path / f"calls-{est.fraction}.vcf")
    assert all("CONTQ" in r.info for r in records)
    flagged = [r for r in records if "contamination" in r.filter.keys()]
    assert flagged and all(r.info["CONTQ"][0] < 3.02 for r in flagged)


@needs_engine
@pytest.mark.parametrize("kind", ["vcf.gz", "bcf"])
def test_read_germline_resource_by_position(tmp_path: Path, kind: str) -> None:
    """A resource read shard by shard gives what one read of the contig gives: a deletion
    written at the far end of a 2,500-base run normalises to its start, in the shard before;
    each ALT of a multi-allelic record has its own AF; an allele spelled twice keeps the larger;
    a '*' or symbolic ALT with AF '.' is left out; a contig the file lacks has nothing."""
    rng = random.Random(5)
    seq = [rng.choice("CGT") for _ in range(20_000)]
    seq[5_000:7_500] = ["A"] * 2_500
    text = "".join(seq)
    codes = np.array(["ACGT".index(b) for b in text], dtype=np.uint8)
    other = {i: "A" if text[i] != "A" else "C" for i in (11_000, 12_000, 12_100)}
    rows = [(7_499, "AA", "A", "0.3"),
            (10_001, text[10_000], ",".join(b for b in "ACGT" if b != text[10_000]),
             "0.1,0.2,0.3"),
            (11_001, text[11_000], other[11_000], "0.01"),
            (11_000, text[10_999:11_001], text[10_999] + other[11_000], "0.05"),
            (12_001, text[12_000], other[12_000], "0"),
            (12_101, text[12_100], other[12_100], "1"),
            (13_001, text[13_000], "*", "."), (13_101, text[13_100], "<DEL>", ".")]
    lines = ["##fileformat=VCFv4.2", "##contig=<ID=chr1,length=20000>",
             "##contig=<ID=chr2,length=20000>",
             '##INFO=<ID=AF,Number=A,Type=Float,Description="AF">',
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    lines += [f"chr1\t{pos}\t.\t{r}\t{a}\t.\t.\tAF={af}" for pos, r, a, af in sorted(rows)]
    vcf = tmp_path / "res.vcf"
    vcf.write_text("\n".join(lines) + "\n")
    path = pysam.tabix_index(str(vcf), preset="vcf", force=True)
    if kind == "bcf":
        path = str(tmp_path / "res.bcf")
        pysam.bcftools.view("-Ob", "-o", path, str(vcf) + ".gz", catch_stdout=False)
        pysam.bcftools.index(path)
    whole = _core.read_germline_resource(path, "chr1", 0, 20_000, codes)
    by_shard = [a for s in range(0, 20_000, 6_000)
                for a in _core.read_germline_resource(path, "chr1", s, min(20_000, s + 6_000),
                                                      codes)]
    assert by_shard == whole
    got = {(p, r, a): round(af, 6) for p, r, a, af in whole}
    ref = text[10_000]
    assert got == {(4_999, text[4_999] + "A", text[4_999]): 0.3,
                   **{(10_000, ref, b): f for b, f in zip(
                       [b for b in "ACGT" if b != ref], (0.1, 0.2, 0.3), strict=True)},
                   (11_000, text[11_000], other[11_000]): 0.05,
                   (12_000, text[12_000], other[12_000]): 0.0,
                   (12_100, text[12_100], other[12_100]): 1.0}
    assert _core.read_germline_resource(path, "chr2", 0, 20_000, codes) == []
    # the file kept open between shards is read again once it is rewritten
    vcf.write_text("\n".join(lines).replace("AF=0.3\n", "AF=0.35\n", 1) + "\n")
    path = pysam.tabix_index(str(vcf), preset="vcf", force=True)
    if kind == "bcf":
        path = str(tmp_path / "res.bcf")
        pysam.bcftools.view("-Ob", "-o", path, str(vcf) + ".gz", catch_stdout=False)
        pysam.bcftools.index("-f", path)
    again = _core.read_germline_resource(path, "chr1", 0, 20_000, codes)
    assert round(again[0][3], 6) == 0.35 and again[1:] == whole[1:]


def _resource_info(rng: random.Random, afs: list[str] | None) -> str:
    """An INFO column as gnomAD's: AF among other entries, some named like it (AF_afr,
    AFX), a flag; afs None: no AF at all."""
    entries = [f"AC={rng.randint(1, 99)}", f"AF_afr={rng.random():.4f}", "DB",
               f"AFX={rng.random():.3f}", f"vep={'|'.join('x' * rng.randint(0, 3))}"]
    rng.shuffle(entries)
    if afs is not None:
        entries.insert(rng.randint(0, len(entries)), "AF=" + ",".join(afs))
    return ";".join(entries)


RESOURCE_HEADER = [
    "##fileformat=VCFv4.2", "##contig=<ID=chr1,length=3000>",
    '##INFO=<ID=AF,Number=A,Type=Float,Description="AF">',
    '##INFO=<ID=AC,Number=A,Type=Integer,Description="AC">',
    '##INFO=<ID=AF_afr,Number=A,Type=Float,Description="AF_afr">',
    '##INFO=<ID=AFX,Number=1,Type=Float,Description="AFX">',
    '##INFO=<ID=DB,Number=0,Type=Flag,Description="DB">',
    '##INFO=<ID=vep,Number=.,Type=String,Description="vep">',
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]


@needs_engine
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 40))
def test_resource_text_reads_as_htslib_reads_its_bcf(tmp_path_factory: pytest.TempPathFactory,
                                                     seed: int, n: int) -> None:
    """A resource's text records (read for POS, REF, ALT and INFO/AF alone) give the alleles
    and frequencies that htslib's decoding of the same records as BCF gives: multi-allelic
    records, AF written in any float spelling or '.', entries named like AF, records with no
    AF (left out), '*' and symbolic ALTs, lower-case bases."""
    rng = random.Random(seed)
    d = tmp_path_factory.mktemp("res")
    text = "".join(rng.choice("ACGT") for _ in range(3_000))
    codes = np.array(["ACGT".index(b) for b in text], dtype=np.uint8)
    lines = []
    for pos in sorted(rng.sample(range(2, 2_900), n)):
        ref = text[pos:pos + rng.choice([1, 1, 2, 4])]
        alts = []
        for _ in range(rng.randint(1, 3)):
            kind = rng.random()
            alt = ("*" if kind < 0.05 else "<DEL>" if kind < 0.1 else
                   ref[0] + "".join(rng.choice("ACGT") for _ in range(rng.randint(0, 3))))
            if alt != ref and alt not in alts:
                alts.append(alt)
        if not alts:
            continue
        afs = []
        for _ in alts:
            f = rng.random() ** 4
            afs.append(rng.choice([".", f"{f:g}", f"{f:.7f}", f"{f:.3e}", repr(f), "0", "1"]))
        if rng.random() < 0.3:
            ref, alts = ref.lower(), [a.lower() if a[0] != "<" else a for a in alts]
        info = _resource_info(rng, None if rng.random() < 0.1 else afs)
        lines.append(f"chr1\t{pos + 1}\t.\t{ref}\t{','.join(alts)}\t.\tPASS\t{info}")
    vcf = d / "res.vcf"
    vcf.write_text("\n".join(RESOURCE_HEADER + lines) + "\n")
    text_path = pysam.tabix_index(str(vcf), preset="vcf", force=True)
    bcf = str(d / "res.bcf")
    pysam.bcftools.view("-Ob", "-o", bcf, text_path, catch_stdout=False)
    pysam.bcftools.index(bcf)
    for start, end in ((0, 3_000), (0, 1_100), (1_100, 3_000)):
        assert _core.read_germline_resource(text_path, "chr1", start, end, codes) == \
            _core.read_germline_resource(bcf, "chr1", start, end, codes)


@needs_engine
@pytest.mark.parametrize(("info", "ref", "says"), [
    ("AF=nan", "C", "INFO/AF nan is not a frequency"),
    ("AF=0.1,", "C", r"INFO/AF \(empty\) is not a frequency"),
    ("AF=", "C", r"INFO/AF \(empty\) is not a frequency"),
    ("DB;AF", "C", r"INFO/AF \(no value\) is not a frequency"),
    ("AF=0.1x", "C", "INFO/AF 0.1x is not a frequency"),
    ("AF=1.5", "C", "INFO/AF 1.5"),
    ("AF=0.1,0.2", "C", "INFO/AF has 2 values for 1 ALTs"),
    ("AF=0.1", "", "not a VCF record"),
])
def test_malformed_resource_text_is_an_error(tmp_path: Path, info: str, ref: str,
                                             says: str) -> None:
    """A resource line read for AF alone still fails, naming the file and the record, where
    its REF or AF is not what a VCF record holds: never a silently different frequency."""
    text = "ACGT" * 250
    codes = np.array(["ACGT".index(b) for b in text], dtype=np.uint8)
    base = text[99] if ref else ""
    vcf = tmp_path / "res.vcf"
    vcf.write_text("\n".join(RESOURCE_HEADER) + "\n" +
                   f"chr1\t100\t.\t{base}\t{'G' if base != 'G' else 'A'}\t.\tPASS\t{info}\n")
    path = pysam.tabix_index(str(vcf), preset="vcf", force=True)
    with pytest.raises(_core.InputError, match=f"res.vcf.gz: .*{says}"):
        _core.read_germline_resource(path, "chr1", 0, 1_000, codes)


@needs_engine
@pytest.mark.parametrize("device", ["cpu", "emulated", "gpu"])
def test_records_do_not_depend_on_threads_or_device(pair: Pair, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    device: str) -> None:
    """1 thread and 2 write the same records, and so do the GPU's haplotype costs (the device
    itself where there is one; else the CUDA module's host emulation)."""
    from gmsaccel.align import cuda_module

    cuda = cuda_module()
    if device != "cpu" and cuda is None:
        pytest.skip("this build has no CUDA kernels")
    if device == "gpu" and cuda.device_count() == 0:
        pytest.skip("no CUDA device")
    if device == "emulated":
        monkeypatch.setenv("GMSACCEL_GPU_EMULATE", "1")
    texts = []
    for threads, dev in ((1, "cpu"), (2, "cpu" if device == "cpu" else "gpu")):
        out = tmp_path / f"{threads}{dev}.vcf"
        Caller(pair.ref, threads=threads, device=dev, somatic=True,
               germline_resource=pair.resource).write_vcf([pair.tumour, pair.normal], out)
        texts.append([ln for ln in out.read_text().splitlines() if not ln.startswith("##")])
    assert len(texts[0]) > 100 and texts[1] == texts[0]


@needs_engine
def test_shards_on_an_executor_give_the_same_records(pair: Pair, tmp_path: Path) -> None:
    """Workers rebuild the Caller from its spec: somatic and its defaults go with it."""
    from concurrent.futures import ThreadPoolExecutor

    local, remote = tmp_path / "local.vcf", tmp_path / "remote.vcf"
    Caller(pair.ref, somatic=True).write_vcf([pair.tumour, pair.normal], local)
    with ThreadPoolExecutor(2) as pool:
        Caller(pair.ref, somatic=True, executor=pool).write_vcf([pair.tumour, pair.normal],
                                                                remote)
    assert [str(r) for r in records_of(remote)] == [str(r) for r in records_of(local)]
    assert len(_alleles(local, passed=True)) > 60


@needs_engine
def test_api_records_write_as_the_engine_formats_them(pair: Pair, tmp_path: Path) -> None:
    """Caller.call's Variants, written back through VcfWriter.write (pysam), give the lines
    the engine formatted (with a germline resource's POPAF and GERMQ too)."""
    caller = Caller(pair.ref, somatic=True, germline_resource=pair.resource)
    engine = tmp_path / "engine.vcf"
    caller.write_vcf([pair.tumour, pair.normal], engine)
    variants = list(caller.call([pair.tumour, pair.normal]))
    assert variants and all(v.af is not None and v.af.shape == (2, len(v.alts))
                            for v in variants)
    again = tmp_path / "api.vcf"
    with pysam.FastaFile(str(pair.ref)) as fa:
        contigs = list(zip(fa.references, fa.lengths, strict=True))
    with VcfWriter(again, contigs, ["TUMOUR", "NORMAL"], pair.ref,
                   somatic=caller.somatic_header(["TUMOUR", "NORMAL"])) as w:
        for v in variants:
            w.write(v.contig, v.to_record())

    def body(p: Path) -> list[str]:
        with pysam.VariantFile(str(p)) as vf:
            return [str(r) for r in vf]

    assert body(again) == body(engine)
    assert all("POPAF" in v.info and "GERMQ" in v.info for v in variants)


def synthetic_reference(d: Path, seed: int, length: int) -> tuple[str, Path, random.Random]:
    """A random chr1 of `length` bases as d/ref.fa (+ .fai), and the generator that made it
    (the reads' draws go on from it)."""
    rng = random.Random(seed)
    seq = "".join(rng.choice("ACGT") for _ in range(length))
    ref = write_fasta(d / "ref.fa", [("chr1", seq)])
    pysam.faidx(str(ref))
    return seq, ref, rng


def write_bam(path: Path, length: int, reads: list[tuple], quality: str) -> Path:
    """A sorted, indexed BAM on chr1 of reads (start, bases, CIGAR tuples, reverse, mate: 1 or
    2 for read 1 or 2 of a pair, None unpaired, name), MAPQ 60, every base of this quality."""
    header = pysam.AlignmentHeader.from_dict({"HD": {"VN": "1.6", "SO": "coordinate"},
                                              "SQ": [{"SN": "chr1", "LN": length}]})
    with pysam.AlignmentFile(str(path), "wb", header=header) as out:
        for start, bases, cigar, rev, mate, name in sorted(reads, key=lambda r: (r[0], r[5])):
            a = pysam.AlignedSegment(header)
            a.query_name, a.query_sequence, a.reference_id = name, bases, 0
            a.reference_start, a.mapping_quality, a.cigartuples = start, 60, cigar
            a.is_reverse = rev
            if mate is not None:
                a.is_paired, a.is_read1, a.is_read2 = True, mate == 1, mate == 2
            a.query_qualities = pysam.qualitystring_to_array(quality * len(bases))
            out.write(a)
    pysam.index(str(path))
    return path


@needs_engine
def test_deep_panel_sees_an_allele_at_two_percent(tmp_path: Path) -> None:
    """At 800x an allele in 2% of the tumour's reads passes; germline calling's candidates
    (5% of the depth) would never have proposed it."""
    seq, ref, rng = synthetic_reference(tmp_path, 11, 2_000)
    site = 1_000
    alt = "ACGT"[("ACGT".index(seq[site]) + 1) % 4]

    def reads(n: int, carriers: int) -> list:
        out = []
        for i in range(n):
            start = rng.randrange(site - 140, site - 10)
            bases = seq[start:start + 150]
            if i < carriers:
                bases = bases[:site - start] + alt + bases[site - start + 1:]
            out.append((start, bases, [(0, 150)], f"r{i}"))
        return out

    # (and 100 reads ending before the site: they are no part of its depth)
    before = [(start, seq[start:start + 150], [(0, 150)], f"b{start}")
              for start in range(site - 250, site - 150)]
    tumour = write_reads_bam(tmp_path / "tumour.bam", len(seq), reads(800, 16) + before)
    normal = write_reads_bam(tmp_path / "normal.bam", len(seq), reads(300, 0))
    out = tmp_path / "deep.vcf"
    Caller(ref, somatic=True).write_vcf([tumour, normal], out)
    (rec,) = list(_alleles(out, passed=True).values())
    assert (rec.pos, rec.ref, rec.alts) == (site + 1, seq[site], (alt,))
    assert rec.samples["tumour"]["AF"][0] == pytest.approx(0.02, abs=0.002)
    assert rec.samples["tumour"]["AD"] == (784, 16) and rec.samples["normal"]["AD"] == (300, 0)
    assert rec.samples["tumour"]["DP"] == 800 and rec.info["DP"] == 1_100
    for caller in (Caller(ref, somatic=True, min_fraction=0.05), Caller(ref)):
        caller.write_vcf([tumour, normal], out)
        assert not records_of(out)


@needs_engine
def test_an_allele_on_one_strand_is_strand_bias(tmp_path: Path) -> None:
    """Two alleles of 24 reads each in a tumour of 400: one on both strands passes, one only on
    reverse reads (an oxidation artifact's pattern) fails strand_bias; SB counts them."""
    seq, ref, rng = synthetic_reference(tmp_path, 5, 2_000)
    both, one = 950, 1_050
    alt = {p: "ACGT"[("ACGT".index(seq[p]) + 2) % 4] for p in (both, one)}

    def bam(name: str, n: int, carriers: bool) -> Path:
        reads = []
        for i in range(n):
            start = rng.randrange(920, 940)
            bases = list(seq[start:start + 150])
            rev = i % 2 == 1
            if carriers and i < 48:  # 24 of each strand carry `both`
                bases[both - start] = alt[both]
            if carriers and rev and i < 48:  # the 24 reverse ones carry `one` too
                bases[one - start] = alt[one]
            reads.append((start, "".join(bases), [(0, 150)], rev, None, f"{name}{i}"))
        return write_bam(tmp_path / f"{name}.bam", len(seq), reads, "I")

    tumour, normal = bam("tumour", 400, True), bam("normal", 200, False)
    recs = {r.pos - 1: r for r in call_somatic(ref, tumour, normal, "sb.vcf", tmp_path)}
    assert sorted(recs) == [both, one]
    assert list(recs[both].filter.keys()) == ["PASS"]
    assert recs[both].samples["tumour"]["SB"] == (176, 176, 24, 24)
    assert list(recs[one].filter.keys()) == ["strand_bias"]
    assert recs[one].samples["tumour"]["SB"] == (200, 176, 0, 24)
    assert recs[one].samples["normal"]["SB"] == (100, 100, 0, 0)


def mixture_bam(path: Path, seq: str, n: int, span: tuple[int, int],
                haplotypes: list[tuple[float, dict[int, str]]], seed: int) -> Path:
    """A BAM of n error-free 150-base reads (base quality 30, strands alternating) starting
    in [span), each from a haplotype (weight, {position: base}) drawn by weight."""
    rng = random.Random(seed)
    weights = [w for w, _ in haplotypes]
    reads = []
    for i in range(n):
        start = rng.randrange(*span)
        (_, changes), = rng.choices(haplotypes, weights)
        bases = [changes.get(p, seq[p]) for p in range(start, start + 150)]
        reads.append((start, "".join(bases), [(0, 150)], i % 2 == 1, None, f"{path.stem}{i}"))
    return write_bam(path, len(seq), reads, "?")


@needs_engine
def test_alleles_sharing_a_site_with_germline_ones(tmp_path: Path) -> None:
    """A somatic allele where the patient is a germline heterozygote, one at a germline
    homozygous site, and one the normal has no reads over: each allele is a record of its own,
    weighed against the site's other alleles, with its own FILTER."""
    seq, ref, rng = synthetic_reference(tmp_path, 3, 4_000)

    def other(p: int, k: int) -> str:
        return "ACGT"[("ACGT".index(seq[p]) + k) % 4]

    het, hom, uncovered = 1_000, 2_000, 3_100
    germ_a = {het: other(het, 1), hom: other(hom, 1)}
    germ_b = {hom: other(hom, 1)}
    cells = {het: other(het, 2), hom: other(hom, 2), uncovered: other(uncovered, 1)}
    normal = mixture_bam(tmp_path / "normal.bam", seq, 1_000, (800, 2_200),
                         [(0.5, germ_a), (0.5, germ_b)], 1)
    tumour = mixture_bam(tmp_path / "tumour.bam", seq, 3_000, (800, 3_200),
                         [(0.5, germ_a), (0.3, germ_b), (0.2, cells)], 2)
    records = call_somatic(ref, tumour, normal, "sites.vcf", tmp_path)
    recs = {(r.pos - 1, r.alts[0]): r for r in records}
    assert all(len(r.alts) == 1 and r.samples["tumour"]["GT"] == (0, 1) for r in recs.values())
    assert list(recs[(het, germ_a[het])].filter.keys()) == ["germline", "normal_artifact"]
    assert list(recs[(hom, germ_b[hom])].filter.keys()) == ["germline", "normal_artifact"]
    for p in (het, hom):
        r = recs[(p, cells[p])]
        assert list(r.filter.keys()) == ["PASS"]
        t = r.samples["tumour"]
        # the fraction of all the reads (those of the germline allele count for neither side)
        assert t["AF"][0] == pytest.approx(t["AD"][1] / t["DP"], abs=0.01)
        assert 0.12 < t["AF"][0] < 0.28
        assert sum(t["AD"]) < 0.6 * t["DP"] if p == het else t["AD"][0] == 0
        assert r.samples["normal"]["AD"][1] == 0 and r.info["NLOD"][0] > 2.2
    r = recs[(uncovered, cells[uncovered])]
    assert list(r.filter.keys()) == ["low_normal_depth"]
    assert r.samples["normal"]["DP"] == 0 and r.samples["normal"]["AF"] == (None,)
    assert r.info["NLOD"] == (0,)


@needs_engine
def test_allele_in_a_window_of_more_than_six_candidates(tmp_path: Path) -> None:
    """Seven candidates in a window: haplotypes are then single candidates and pairs only. The
    somatic allele beside three germline homozygous sites, each with a 1.7% error allele, must
    be weighed against haplotypes of the same backgrounds, not lose to richer ones."""
    seq, ref, rng = synthetic_reference(tmp_path, 13, 3_000)

    def other(p: int, k: int) -> str:
        return "ACGT"[("ACGT".index(seq[p]) + k) % 4]

    homs = {p: other(p, 1) for p in (2_000, 2_006, 2_012)}
    site = 2_009
    haplotypes = [(0.19, {**homs, site: other(site, 1)})]
    haplotypes += [(0.017, {**homs, p: other(p, 2)}) for p in homs]
    haplotypes += [(1 - 0.19 - 3 * 0.017, homs)]
    tumour = mixture_bam(tmp_path / "tumour.bam", seq, 1_000, (1_870, 1_990), haplotypes, 6)
    normal = mixture_bam(tmp_path / "normal.bam", seq, 300, (1_870, 1_990), [(1.0, homs)], 7)
    records = call_somatic(ref, tumour, normal, "dense.vcf", tmp_path)
    recs = {(r.pos - 1, r.alts[0]): r for r in records}
    r = recs[(site, other(site, 1))]
    assert list(r.filter.keys()) == ["PASS"]
    assert r.samples["tumour"]["AF"][0] == pytest.approx(0.19, abs=0.04)
    for p, base in homs.items():  # the germline sites keep their reads
        t = recs[(p, base)].samples["tumour"]
        assert t["AD"][1] >= 0.9 * t["DP"] and t["AF"][0] > 0.9


def indel_bam(path: Path, seq: str, n: int, span: tuple[int, int],
              haplotypes: list[tuple[float, list[tuple[int, str, str]]]], seed: int) -> Path:
    """Like mixture_bam, with haplotypes as anchored VCF-style changes (0-based pos, REF, ALT:
    substitutions, deletions, insertions), each read aligned as its haplotype was made."""
    rng = random.Random(seed)
    tracks = []  # per haplotype: (base, reference position, inserted)
    for _, changes in haplotypes:
        track, i = [], 0
        for pos, ref_allele, alt in sorted(changes):
            track += [(seq[j], j, False) for j in range(i, pos)]
            track.append((alt[0], pos, False))
            track += [(b, pos, True) for b in alt[1:]]
            i = pos + len(ref_allele)
        track += [(seq[j], j, False) for j in range(i, len(seq))]
        tracks.append(track)
    reads = []
    for i in range(n):
        (track,) = rng.choices(tracks, [w for w, _ in haplotypes])
        at = next(j for j in range(rng.randrange(*span), len(track)) if not track[j][2])
        part = track[at:at + 150]
        cigar: list[tuple[int, int]] = []
        for k, (_, rpos, inserted) in enumerate(part):
            ops = [(1, 1)] if inserted else [(0, 1)]
            prev = next((p for _, p, ins in reversed(part[:k]) if not ins), None)
            if not inserted and prev is not None and rpos > prev + 1:
                ops.insert(0, (2, rpos - prev - 1))
            for op, length in ops:
                if cigar and cigar[-1][0] == op:
                    cigar[-1] = (op, cigar[-1][1] + length)
                else:
                    cigar.append((op, length))
        reads.append((part[0][1], "".join(b for b, _, _ in part), cigar, i % 2 == 1, None,
                      f"{path.stem}{i}"))
    return write_bam(path, len(seq), reads, "?")


@needs_engine
def test_indels_and_alleles_they_cover(tmp_path: Path) -> None:
    """A 40-base somatic deletion over three germline homozygous SNVs; at another anchor a
    somatic SNV and a somatic deletion (over two homozygous SNVs), each in its own clone; a
    somatic SNV inside a germline heterozygous deletion, on the other copy. Each allele passes
    at its fraction of all the reads there (reads deleting a site count as neither side)."""
    seq, ref, rng = synthetic_reference(tmp_path, 21, 4_000)

    def snv(p: int, k: int = 1) -> tuple[int, str, str]:
        return (p, seq[p], "ACGT"[("ACGT".index(seq[p]) + k) % 4])

    def deletion(p: int, length: int) -> tuple[int, str, str]:
        return (p, seq[p:p + length + 1], seq[p])

    homs = [snv(p) for p in (1_010, 1_020, 1_030, 2_510, 2_520)]
    j_del, k_snv, k_del = deletion(1_000, 40), snv(2_500, 2), deletion(2_500, 40)
    l_del, l_snv = deletion(3_499, 4), snv(3_501, 2)

    def without(changes: list, span: tuple[int, str, str]) -> list:
        return [c for c in changes if not span[0] < c[0] < span[0] + len(span[1])]

    g1, g2 = homs + [l_del], homs
    tumour_haps = [(0.35, g1), (0.35, g2),
                   (0.15, without(g2, j_del) + [j_del, k_snv, l_snv]),
                   (0.15, without(g1, k_del) + [k_del])]
    tumour = indel_bam(tmp_path / "tumour.bam", seq, 6_000, (850, 3_650), tumour_haps, 1)
    normal = indel_bam(tmp_path / "normal.bam", seq, 3_000, (850, 3_650), [(0.5, g1), (0.5, g2)],
                       2)
    records = call_somatic(ref, tumour, normal, "indels.vcf", tmp_path)
    recs = {(r.pos - 1, r.ref, r.alts[0]): r for r in records}
    for allele in (j_del, k_snv, k_del, l_snv):
        r = recs[allele]
        t = r.samples["tumour"]
        assert list(r.filter.keys()) == ["PASS"], (allele, r)
        assert 0.09 < t["AF"][0] < 0.21 and t["AF"][0] == pytest.approx(t["AD"][1] / t["DP"],
                                                                         abs=0.03), (allele, r)
        assert r.info["NLOD"][0] > 10, (allele, r)
    for allele in [*homs, l_del]:
        assert "germline" in recs[allele].filter.keys()
    # the homozygous SNVs' reads: all of the allele but those deleting the site (15%)
    for allele in homs:
        t = recs[allele].samples["tumour"]
        assert t["AD"][0] <= 0.02 * t["DP"] and 0.78 < t["AF"][0] < 0.92, (allele, t)


@needs_engine
def test_normal_showing_the_allele_a_little_is_normal_artifact(tmp_path: Path) -> None:
    """3% of the normal's reads with the allele: too few for a germline carrier (NLOD high),
    too many for errors (its own log10 odds of the allele >= 3)."""
    seq, ref, rng = synthetic_reference(tmp_path, 8, 1_500)
    site = 700
    allele = {site: "ACGT"[("ACGT".index(seq[site]) + 1) % 4]}
    tumour = mixture_bam(tmp_path / "tumour.bam", seq, 600, (560, 690), [(0.8, {}),
                                                                           (0.2, allele)], 4)
    normal = mixture_bam(tmp_path / "normal.bam", seq, 400, (560, 690), [(0.97, {}),
                                                                           (0.03, allele)], 5)
    (r,) = call_somatic(ref, tumour, normal, "na.vcf", tmp_path)
    assert list(r.filter.keys()) == ["normal_artifact"]
    assert r.info["NLOD"][0] > 2.2 and 0 < r.samples["normal"]["AF"][0] < 0.1


@needs_engine
def test_an_allele_on_one_strand_of_its_fragments_is_orientation_bias(tmp_path: Path) -> None:
    """Damage to one strand of the fragments (oxidised G) shows in read 1 on one read strand
    and in read 2 on the other: the read strands are balanced, the fragments' strands are not.
    An allele on 24 such reads fails orientation_bias, not strand_bias; one on 24 reads of
    every kind passes."""
    seq, ref, rng = synthetic_reference(tmp_path, 9, 1_500)
    true_site, damaged = 700, 720
    alt = {p: "ACGT"[("ACGT".index(seq[p]) + 1) % 4] for p in (true_site, damaged)}

    def bam(name: str, n: int, carriers: bool) -> Path:
        reads = []
        shown = {1: 0}  # reads showing the damage, of the damaged fragment strand
        for i in range(n):
            rev, second = i % 2 == 1, i % 4 >= 2
            start = rng.randrange(580, 690)
            bases = list(seq[start:start + 150])
            if carriers and i < 48 and (i // 4) % 2 == 0:  # 24 reads, 6 of each kind
                bases[true_site - start] = alt[true_site]
            orientation = int(rev != second)
            if carriers and orientation == 1 and shown[1] < 24:
                bases[damaged - start] = alt[damaged]
                shown[1] += 1
            reads.append((start, "".join(bases), [(0, 150)], rev, 2 if second else 1,
                          f"{name}{i}"))
        return write_bam(tmp_path / f"{name}.bam", len(seq), reads, "I")

    tumour, normal = bam("tumour", 400, True), bam("normal", 200, False)
    recs = {r.pos - 1: r for r in call_somatic(ref, tumour, normal, "ob.vcf", tmp_path)}
    assert sorted(recs) == [true_site, damaged]
    assert list(recs[true_site].filter.keys()) == ["PASS"]
    sb = recs[damaged].samples["tumour"]["SB"]
    assert sb[2] == sb[3] == 12  # read strands balanced
    assert list(recs[damaged].filter.keys()) == ["orientation_bias"]


def records_of(vcf: Path) -> list[pysam.VariantRecord]:
    with pysam.VariantFile(str(vcf)) as vf:
        return list(vf)


def call_somatic(ref: Path, tumour: Path, normal: Path, name: str, tmp_path: Path
                 ) -> list[pysam.VariantRecord]:
    """The somatic records of a tumour against its normal (Caller's defaults), written to
    tmp_path/name."""
    out = tmp_path / name
    Caller(ref, somatic=True).write_vcf([tumour, normal], out)
    return records_of(out)


def normal_with_tumour(pair: Pair, share: float, path: Path) -> Path:
    """The pair's normal with `share` of its reads the tumour's (pairs chosen by name): a
    normal holding tumour cells, whose somatic alleles show at `share` of their fraction in
    the tumour."""
    def keep(name: str, p: float) -> bool:
        return zlib.crc32(name.encode()) / 2**32 < p

    unsorted = path.with_suffix(".unsorted.bam")
    with pysam.AlignmentFile(str(pair.normal)) as normal, \
            pysam.AlignmentFile(str(pair.tumour)) as tumour, \
            pysam.AlignmentFile(str(unsorted), "wb", header=normal.header) as out:
        for src, p in ((normal, 1 - share), (tumour, share * NORMAL_DEPTH / TUMOUR_DEPTH)):
            for r in src:
                if keep(r.query_name, p):
                    r.set_tag("RG", "normal")
                    out.write(r)
    pysam.sort("-o", str(path), str(unsorted))
    pysam.index(str(path))
    unsorted.unlink()
    return path


@needs_engine
def test_tumour_in_the_normal(pair: Pair, tmp_path: Path) -> None:
    """A normal holding the tumour's cells shows its somatic alleles: taken as germline or
    artifacts, most are lost. The estimate from a first call (tumour_in_normal.py) holds the
    share mixed in, and calling with it recovers them, the germline variants still filtered;
    call --tumour-in-normal auto does both, and on a clean normal keeps the first call."""
    share = 0.3
    normal = normal_with_tumour(pair, share, tmp_path / "tin.bam")
    first = tmp_path / "first.vcf.gz"
    Caller(pair.ref, somatic=True).write_vcf([pair.tumour, normal], first)
    lost = set(pair.somatic) - set(_alleles(first, passed=True))
    assert len(lost) >= 0.3 * len(pair.somatic), len(lost)
    est = estimate_tumour_in_normal(first)
    assert est.excludes_zero() and est.low <= share <= est.high, est
    modelled = tmp_path / "modelled.vcf.gz"
    Caller(pair.ref, somatic=True, tumour_in_normal=est.fraction).write_vcf(
        [pair.tumour, normal], modelled)
    called = _alleles(modelled, passed=True)
    # (at 0.3 a carrier's normal shows its tumour cells' fraction too, nearer a somatic
    # allele's: a few of 30 normal reads fall as germline)
    assert len(set(pair.somatic) - set(called)) <= 0.12 * len(pair.somatic)
    assert len(set(called) - set(pair.somatic)) <= 1
    germline = {(v.contig, v.pos, v.ref, v.alt) for v in pair.germline}
    assert not germline & set(called)
    assert vcf_tumour_in_normal(modelled) == est.fraction
    assert vcf_tumour_in_normal(first) == 0.0
    # the command line: the estimate, then the call with it
    out, metrics = tmp_path / "auto.vcf.gz", tmp_path / "auto.json"
    proc = run_cli("call", "-f", pair.ref, "--somatic", pair.tumour, "--normal", normal,
                   "--tumour-in-normal", "auto", "-o", out, "--metrics", metrics)
    err = proc.stderr.decode()
    assert proc.returncode == 0 and "calling again with" in err, err
    assert [str(r) for r in records_of(out)] == [str(r) for r in records_of(modelled)]
    m = json.loads(metrics.read_text())
    assert m["tumour_in_normal_modelled"] == est.fraction
    assert m["tumour_in_normal_estimate"] == est.as_dict()
    assert sorted(p.name for p in tmp_path.glob(".first-pass*")) == []
    # a clean normal: the interval holds 0, the first call stands
    clean = tmp_path / "clean.vcf.gz"
    proc = run_cli("call", "-f", pair.ref, "--somatic", pair.tumour, "--normal", pair.normal,
                   "--tumour-in-normal", "auto", "-o", clean)
    err = proc.stderr.decode()
    assert proc.returncode == 0 and "the first call stands" in err, err
    plain = tmp_path / "plain.vcf.gz"
    Caller(pair.ref, somatic=True).write_vcf([pair.tumour, pair.normal], plain)
    assert [str(r) for r in records_of(clean)] == [str(r) for r in records_of(plain)]
    assert Path(f"{clean}.tbi").is_file() and not list(tmp_path.glob(".first-pass*"))
    for args, needle in (
            (["--somatic", pair.tumour, "--tumour-in-normal", "0.2"], "goes with --somatic and "
                                                                      "--normal"),
            (["--somatic", pair.tumour, "--normal", normal, "--tumour-in-normal", "auto", "-o",
              "-"], "give -o a file"),
            (["--somatic", pair.tumour, "--normal", normal, "--tumour-in-normal", "1.5"],
             "tumour_in_normal in [0, 1)")):
        target = tmp_path / "bad.vcf.gz"
        proc = run_cli("call", "-f", pair.ref, *args, *([] if "-o" in args else ["-o", target]))
        err = proc.stderr.decode()
        assert proc.returncode == 1 and needle in err and "Traceback" not in err, err
        assert not target.exists()
    with pytest.raises(ValueError, match="needs a normal"):
        Caller(pair.ref, somatic=True, tumour_in_normal=0.2).write_vcf([pair.tumour],
                                                                       tmp_path / "x.vcf")


@needs_engine
def test_run_tumour_in_the_normal_auto(pair: Pair, tmp_path: Path) -> None:
    """run --somatic --tumour-in-normal auto against a normal holding tumour cells: the VCF
    is the caller's at the estimate, which the metrics and the header give; --resume reuses
    the call and reads what it modelled back."""
    normal = normal_with_tumour(pair, 0.3, tmp_path / "tin.bam")
    out = tmp_path / "out"
    (t1, t2) = pair.fastq["tumour"]

    def run() -> dict:
        proc = run_cli("run", "-f", pair.ref, t1, t2, "--sample", "T", "--somatic",
                       "--normal-bam", normal, "--tumour-in-normal", "auto", "-o", out,
                       "-t", "2", "--resume")
        assert proc.returncode == 0, proc.stderr.decode()
        return json.loads((out / "T.metrics.json").read_text())

    m = run()
    tin = m["normal"]["tumour_in_normal"]
    assert tin["low"] <= 0.3 <= tin["high"] and m["tumour_in_normal_modelled"] == tin["fraction"]
    expected = tmp_path / "expected.vcf"
    Caller(pair.ref, somatic=True, tumour_in_normal=tin["fraction"]).write_vcf(
        [out / "T.bam", normal], expected)
    assert [str(r) for r in records_of(out / "T.vcf.gz")] == \
        [str(r) for r in records_of(expected)]
    assert not list(out.glob(".first-pass*"))
    again = run()
    assert again["reused_stages"] == ["align", "call"]
    assert again["tumour_in_normal_modelled"] == tin["fraction"]


# ---------------------------------------------------------------------------------------------
# command line


@needs_engine
def test_cli_somatic_and_its_errors(pair: Pair, tmp_path: Path) -> None:
    out = tmp_path / "cli.vcf.gz"
    proc = run_cli("call", "-f", pair.ref, "--somatic", pair.tumour, "--normal", pair.normal,
                   "-o", out, "-t", "2", "--metrics", tmp_path / "m.json")
    assert proc.returncode == 0, proc.stderr
    assert b"PASS somatic records" in proc.stderr
    assert out.exists() and Path(str(out) + ".tbi").exists()
    view = pysam.bcftools.view("-H", "-f", "PASS", str(out))
    assert len(view.splitlines()) == len(_alleles(out, passed=True))
    bad = [
        (["--normal", pair.normal, pair.tumour], "--normal goes with --somatic"),
        (["--somatic", pair.tumour, pair.normal], "--somatic takes one IN.bam"),
        (["--somatic", "--gvcf", pair.tumour], "--somatic goes with none of"),
        (["--somatic", "--ploidy", "1", pair.tumour], "--ploidy does not apply"),
        (["--panel-of-normals", pair.somatic_truth, pair.tumour], "goes with --somatic"),
        (["--somatic", pair.tumour, "--normal", pair.tumour], "is also the sample of"),
    ]
    for args, needle in bad:
        target = tmp_path / "bad.vcf.gz"
        proc = run_cli("call", "-f", pair.ref, *args, "-o", target)
        err = proc.stderr.decode()
        assert proc.returncode == 1 and needle in err and "Traceback" not in err, err
        assert not target.exists()


def _filter_counts(vcf: Path) -> dict[str, int]:
    """Filtered records by each filter they fail, as pysam reads them."""
    return dict(Counter(f for r in records_of(vcf) for f in r.filter.keys() if f != "PASS"))


def _head_fastq(src: Path, dst: Path, reads: int) -> Path:
    dst.write_text("".join(src.read_text().splitlines(keepends=True)[: 4 * reads]))
    return dst


@needs_engine
def test_run_a_tumour_and_its_normal(pair: Pair, tmp_path: Path) -> None:
    """run --somatic from both samples' FASTQ: each BAM (its own read group), the somatic VCF
    that the caller writes from those BAMs, metrics with the normal's part and each BAM's
    contamination, and a report; --resume reuses every stage, and new reads for the normal
    align the normal and call again, not the tumour."""
    out = tmp_path / "out"
    (t1, t2), (n1, n2) = pair.fastq["tumour"], pair.fastq["normal"]

    def run(normal1: Path, normal2: Path) -> dict:
        proc = run_cli("run", "-f", pair.ref, t1, t2, "--sample", "T", "--somatic",
                       "--normal-reads1", normal1, "--normal-reads2", normal2,
                       "--normal-sample", "N", "--germline-resource", pair.resource,
                       "-o", out, "-t", "2", "--resume")
        assert proc.returncode == 0, proc.stderr.decode()
        return json.loads((out / "T.metrics.json").read_text())

    m = run(n1, n2)
    for name in ("T.bam", "T.bam.bai", "N.bam", "N.bam.bai", "T.vcf.gz", "T.vcf.gz.tbi",
                 "T.report.html"):
        assert (out / name).is_file(), name
    normal_reads = 2 * len(n1.read_text().splitlines()) // 4
    for name, reads in (("T", 2 * len(t1.read_text().splitlines()) // 4), ("N", normal_reads)):
        with pysam.AlignmentFile(str(out / f"{name}.bam")) as f:
            assert [rg["SM"] for rg in f.header["RG"]] == [name]
            assert sum(1 for r in f if not r.is_secondary and not r.is_supplementary) == reads
    expected = tmp_path / "expected.vcf"
    Caller(pair.ref, somatic=True, germline_resource=pair.resource).write_vcf(
        [out / "T.bam", out / "N.bam"], expected)
    assert [str(r) for r in records_of(out / "T.vcf.gz")] == \
        [str(r) for r in records_of(expected)]
    called = _alleles(out / "T.vcf.gz", passed=True)
    assert len(set(pair.somatic) - set(called)) <= 0.03 * len(pair.somatic)
    assert m["somatic"] and m["pass"] == len(called) and m["reads"] > normal_reads
    assert m["filters"] == _filter_counts(out / "T.vcf.gz") and m["filters"]["germline"] > 0
    assert m["records"] == len(records_of(expected))
    n = m["normal"]
    assert n["sample"] == "N" and n["aligned_here"] and n["reads"] == normal_reads
    assert 25 < n["mean_depth"] < 35 and n["bam"] == str(out / "N.bam")
    for cont in (m["contamination"], n["contamination"]):
        assert cont["low"] <= cont["fraction"] <= cont["high"] < 0.02, cont
    # a normal free of the tumour: the estimate's interval holds 0, and nothing was modelled
    assert m["tumour_in_normal_modelled"] == 0.0
    assert n["tumour_in_normal"]["low"] == 0 and n["tumour_in_normal"]["high"] < 0.05
    assert n["tumour_in_normal"] == estimate_tumour_in_normal(out / "T.vcf.gz").as_dict()
    page = (out / "T.report.html").read_text()
    assert "PASS somatic" in page and "Normal contamination" in page
    assert "Tumour in normal" in page
    assert run(n1, n2)["reused_stages"] == ["align", "align_normal", "call"]
    fewer = (_head_fastq(n1, tmp_path / "n_1.fq", normal_reads // 2 - 100),
             _head_fastq(n2, tmp_path / "n_2.fq", normal_reads // 2 - 100))
    m = run(*fewer)
    assert m["reused_stages"] == ["align"] and m["normal"]["reads"] == normal_reads - 200


@needs_engine
def test_run_tumour_only_and_a_normal_aligned_elsewhere(pair: Pair, tmp_path: Path) -> None:
    """run --somatic without a normal (tumour-only, with the resource and the tumour's own
    contamination estimate modelled), and against a normal BAM aligned before: the records
    are the caller's from the same BAMs and options."""
    out = tmp_path / "out"
    t1, t2 = pair.fastq["tumour"]
    proc = run_cli("run", "-f", pair.ref, t1, t2, "--sample", "T", "--somatic",
                   "--germline-resource", pair.resource, "--contamination", "auto", "-o", out,
                   "-t", "2", "--no-report")
    assert proc.returncode == 0, proc.stderr.decode()
    m = json.loads((out / "T.metrics.json").read_text())
    assert m["normal"] is None and m["contamination_modelled"] == m["contamination"]["fraction"]
    expected = tmp_path / "only.vcf"
    Caller(pair.ref, somatic=True, germline_resource=pair.resource,
           contamination=m["contamination"]["fraction"]).write_vcf(out / "T.bam", expected)
    only = records_of(out / "T.vcf.gz")
    assert [str(r) for r in only] == [str(r) for r in records_of(expected)]
    assert list(only[0].samples) == ["T"]
    proc = run_cli("run", "-f", pair.ref, t1, t2, "--sample", "T2", "--somatic",
                   "--normal-bam", pair.normal, "--normal-germline", "-o", out, "-t", "2",
                   "--resume")
    assert proc.returncode == 0, proc.stderr.decode()
    m = json.loads((out / "T2.metrics.json").read_text())
    n = m["normal"]
    assert n["sample"] == "NORMAL" and not n["aligned_here"] and n["reads"] is None
    assert 25 < n["mean_depth"] < 35 and n["contamination"] is None
    Caller(pair.ref, somatic=True).write_vcf([out / "T2.bam", pair.normal], expected)
    assert [str(r) for r in records_of(out / "T2.vcf.gz")] == \
        [str(r) for r in records_of(expected)]
    assert "Normal" in (out / "T2.report.html").read_text()
    # --normal-germline: the normal's germline calls, as a germline call of its BAM writes them
    germline = tmp_path / "germline.vcf"
    Caller(pair.ref).write_vcf(pair.normal, germline)
    assert [str(r) for r in records_of(out / "T2.normal.vcf.gz")] == \
        [str(r) for r in records_of(germline)]
    assert (out / "T2.normal.vcf.gz.tbi").exists()
    assert n["germline"]["pass"] == sum(1 for r in records_of(germline)
                                        if "PASS" in r.filter.keys())
    truth = {(v.contig, v.pos, v.ref, v.alt) for v in pair.germline}
    assert len(truth & set(_alleles(out / "T2.normal.vcf.gz", passed=True))) >= \
        0.95 * len(truth)
    proc = run_cli("run", "-f", pair.ref, t1, t2, "--sample", "T2", "--somatic",
                   "--normal-bam", pair.normal, "--normal-germline", "-o", out, "-t", "2",
                   "--resume")
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads((out / "T2.metrics.json").read_text())["reused_stages"] == [
        "align", "call", "call_normal"]
    assert "Normal germline" in (out / "T2.report.html").read_text()


@needs_engine
def test_run_somatic_errors(pair: Pair, tmp_path: Path) -> None:
    """Options that do not go together, or a normal that is missing or is the tumour, fail
    before any alignment: one line naming the option or file, no output."""
    (t1, t2), (n1, n2) = pair.fastq["tumour"], pair.fastq["normal"]
    bad = [
        (["--normal-reads1", n1], "--normal-reads1 goes with --somatic"),
        (["--contamination", "auto"], "--contamination goes with --somatic"),
        (["--panel-of-normals", pair.somatic_truth], "--panel-of-normals goes with --somatic"),
        (["--somatic", "--normal-reads1", n1], "needs --normal-sample"),
        (["--somatic", "--normal-reads2", n2], "--normal-reads2 goes with --normal-reads1"),
        (["--somatic", "--normal-sample", "N"], "--normal-sample names the normal"),
        (["--somatic", "--normal-reads1", n1, "--normal-sample", "T"], "is also the tumour's"),
        (["--somatic", "--normal-reads1", n1, "--normal-sample", "t"], "is also the tumour's"),
        (["--somatic", "--interleaved", "--normal-reads1", n1, "--normal-reads2", n2,
          "--normal-sample", "N"], "give no --normal-reads2"),
        (["--somatic", "--normal-reads1", n1, "--normal-sample", "a/b"], "use a plain name"),
        (["--somatic", "--normal-reads1", n1, "--normal-sample", "N", "--normal-bam",
          pair.normal], "not both"),
        (["--somatic", "--normal-reads1", tmp_path / "none.fq", "--normal-sample", "N"],
         "none.fq: no such file"),
        (["--somatic", "--normal-bam", tmp_path / "none.bam"], "none.bam: no such file"),
        (["--somatic", "--contamination", "auto"],
         "--contamination goes with --germline-resource"),
        (["--somatic", "--gvcf"], "--somatic goes with none of"),
        (["--normal-germline"], "--normal-germline goes with --somatic"),
        (["--somatic", "--normal-germline"], "--normal-germline needs a normal"),
        (["--tumour-in-normal", "auto"], "--tumour-in-normal goes with --somatic"),
        (["--somatic", "--tumour-in-normal", "0.1"], "--tumour-in-normal needs a normal"),
        (["--somatic", "--normal-bam", pair.normal, "--tumour-in-normal", "1"],
         "tumour_in_normal in [0, 1)"),
        (["--somatic", "--sample", "TUMOUR", "--normal-bam", pair.tumour],
         "is also the tumour's --sample"),
    ]
    out = tmp_path / "out"
    for args, needle in bad:
        sample = [] if "--sample" in args else ["--sample", "T"]
        reads = [t1] if "--interleaved" in args else [t1, t2]
        proc = run_cli("run", "-f", pair.ref, *reads, *sample, *args, "-o", out)
        err = proc.stderr.decode()
        assert proc.returncode == 1 and needle in err and "Traceback" not in err, (args, err)
        assert not out.exists() or not any(out.iterdir()), (args, list(out.iterdir()))
    # a --normal-bam the run would write over (its own tumour BAM's path): refused, untouched
    own = tmp_path / "own"
    own.mkdir()
    for suffix in ("", ".bai"):
        own.joinpath("T.bam" + suffix).write_bytes(Path(f"{pair.normal}{suffix}").read_bytes())
    before = (own / "T.bam").read_bytes()
    proc = run_cli("run", "-f", pair.ref, t1, t2, "--sample", "T", "--somatic", "--normal-bam",
                   own / "T.bam", "-o", own)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "this run writes that file" in err, err
    assert (own / "T.bam").read_bytes() == before


@needs_engine
def test_run_contamination_auto_beyond_what_is_modelled(pair: Pair, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """An estimate at the bound (half the reads another person's: a mixed sample) is not
    modelled: run warns and calls without it; call --contamination auto refuses."""
    import gmsaccel.contamination
    from gmsaccel import cli
    from gmsaccel.contamination import ContaminationEstimate

    def half(*args: object, **kwargs: object) -> ContaminationEstimate:
        return ContaminationEstimate(0.5, 0.45, 0.5, 500, 20_000, 0.001)

    monkeypatch.setattr(gmsaccel.contamination, "estimate_contamination", half)
    monkeypatch.setattr(gmsaccel.contamination, "estimate_contamination_by_read_group",
                        lambda *args, **kwargs: (half(), []))
    t1, t2 = pair.fastq["tumour"]
    out = tmp_path / "out"
    assert cli.main(["run", "-f", str(pair.ref), str(t1), str(t2), "--sample", "T",
                     "--somatic", "--germline-resource", str(pair.resource),
                     "--contamination", "auto", "-o", str(out), "-q", "--no-report"]) == 0
    m = json.loads((out / "T.metrics.json").read_text())
    assert m["contamination"]["fraction"] == 0.5 and m["contamination_modelled"] is None
    with pysam.VariantFile(str(out / "T.vcf.gz")) as vf:
        assert not any(line.key == "contamination" for line in vf.header.records)
    target = tmp_path / "call.vcf.gz"
    assert cli.main(["call", "-f", str(pair.ref), "--somatic", str(pair.tumour),
                     "--germline-resource", str(pair.resource), "--contamination", "auto",
                     "-o", str(target), "-q"]) == 1
    assert not target.exists()


def test_caller_somatic_options_are_checked(tmp_path: Path) -> None:
    ref = write_fasta(tmp_path / "ref.fa", random_genome(5, {"c": 2_000}))
    pysam.faidx(str(ref))
    with pytest.raises(ValueError, match="go with somatic=True"):
        Caller(ref, min_tlod=5)
    with pytest.raises(ValueError, match="neither given alleles nor a ploidy file"):
        Caller(ref, somatic=True, alleles=tmp_path / "x.vcf")
    with pytest.raises(ValueError, match="ploidy does not apply"):
        Caller(ref, ploidy=1, somatic=True)
    for bad in ({"min_tlod": float("nan")}, {"min_tlod": -1}, {"pass_tlod": 2},
                {"max_normal_alod": 0}, {"min_strand_p": 2}):
        with pytest.raises(ValueError, match="somatic thresholds"):
            Caller(ref, somatic=True, **bad)
    assert Caller(ref, somatic=True, pass_tlod=10, min_strand_p=0).somatic_thresholds[
        "pass_tlod"] == 10
    with pytest.raises(ValueError, match="not a gVCF"):
        VcfWriter(tmp_path / "x.vcf", [("c", 2_000)], ["T"], gvcf=True,
                  somatic=Caller(ref, somatic=True).somatic_header(["T"]))


@needs_engine
def test_tumour_in_normal_auto_beyond_what_is_modelled(pair: Pair, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture) -> None:
    """An estimate beyond AUTO_LIMIT (a normal mostly tumour, or alleles both samples show
    alike) is not modelled by auto: a warning, and the first call stands."""
    import gmsaccel.tumour_in_normal
    from gmsaccel import cli
    from gmsaccel.tumour_in_normal import TumourInNormalEstimate

    monkeypatch.setattr(gmsaccel.tumour_in_normal, "estimate_tumour_in_normal",
                        lambda *args, **kwargs: TumourInNormalEstimate(0.9, 0.88, 0.92, 500,
                                                                       9000))
    out = tmp_path / "auto.vcf.gz"
    assert cli.main(["call", "-f", str(pair.ref), "--somatic", str(pair.tumour), "--normal",
                     str(pair.normal), "--tumour-in-normal", "auto", "-o", str(out),
                     "--metrics", str(tmp_path / "m.json")]) == 0
    err = capsys.readouterr().err
    assert "warning: --tumour-in-normal auto" in err and "beyond 50%" in err, err
    assert vcf_tumour_in_normal(out) == 0.0
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["tumour_in_normal_modelled"] == 0.0
    assert m["tumour_in_normal_estimate"]["fraction"] == 0.9
