"""Contamination estimates (contamination.py, gmsaccel contamination): the likelihood against a
scalar definition, the estimate on counts drawn from its own model, and reads of two simulated
people mixed, aligned and estimated."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pysam
import pysam.bcftools
import pytest
from conftest import random_genome, run_cli, write_fasta
from hypothesis import given, settings
from hypothesis import strategies as st

from gmsaccel import _core
from gmsaccel.align import Aligner, Index
from gmsaccel.contamination import (
    ReadGroupEstimate,
    estimate,
    estimate_contamination,
    estimate_contamination_by_read_group,
    estimate_given_genotypes,
    estimate_groups,
    log_likelihood,
)
from gmsaccel.simulate import Variant, apply_variants, simulate_pairs, write_fastq

needs_engine = pytest.mark.skipif(not hasattr(_core, "read_germline_resource"),
                                  reason="germline resources not in this build")


def scalar_log_likelihood(c: float, p: list[float], ref: list[int], alt: list[int],
                          error: float, het: float = 0.5) -> float:
    """The model written out site by site: the sample's genotype g and one contaminant's h,
    each in Hardy-Weinberg proportions, alternate molecules (1 - c) g/2 + c h/2, seen through
    the error rate of each wrong base."""
    total = 0.0
    for pi, r, a in zip(p, ref, alt, strict=True):
        prior = [(1 - pi) ** 2, 2 * pi * (1 - pi), pi ** 2]
        site = 0.0
        for g in range(3):
            for h in range(3):
                share = (0.0, het, 1.0)
                frac = (1 - c) * share[g] + c * share[h]
                # each wrong base at `error`; reads of the two non-allele bases not counted
                seen = (frac * (1 - 3 * error) + (1 - frac) * error) / (1 - 2 * error)
                site += prior[g] * prior[h] * seen ** a * (1 - seen) ** r
        total += math.log(site)
    return total


@settings(max_examples=200, deadline=None)
@given(sites=st.lists(st.tuples(st.floats(0.01, 0.99), st.integers(0, 30), st.integers(0, 30)),
                      min_size=1, max_size=20),
       c=st.floats(0, 0.5), error=st.floats(1e-4, 0.05), het=st.floats(0.3, 0.7))
def test_log_likelihood_is_its_definition(sites: list, c: float, error: float,
                                          het: float) -> None:
    p, ref, alt = (list(x) for x in zip(*sites, strict=True))
    got = log_likelihood(c, np.array(p), np.array(ref, float), np.array(alt, float), error, het)
    assert got == pytest.approx(scalar_log_likelihood(c, p, ref, alt, error, het), rel=1e-9,
                                abs=1e-9)


def model_counts(c: float, n_sites: int, depth: int, error: float, seed: int,
                 het: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read counts drawn from the model: genotypes of the sample and of one contaminant per site
    (Hardy-Weinberg; a heterozygote's alternate share of the reads `het`), Poisson depth,
    multinomial reads of the two alleles and the two other bases."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.98, n_sites)
    share = np.array([0.0, het, 1.0])
    g = share[rng.binomial(2, p)]
    h = share[rng.binomial(2, p)]
    frac = (1 - c) * g + c * h
    n = rng.poisson(depth, n_sites)
    # each read: the alternate base, the reference base or one of the two others (dropped)
    shown = np.stack([frac * (1 - 3 * error) + (1 - frac) * error,
                      (1 - frac) * (1 - 3 * error) + frac * error,
                      np.full(n_sites, 2 * error)], axis=1)
    counts = np.array([rng.multinomial(k, row) for k, row in zip(n, shown, strict=True)])
    return p, counts[:, 1].astype(float), counts[:, 0].astype(float)


@pytest.mark.parametrize("c", [0.0, 0.005, 0.02, 0.1, 0.3])
def test_estimate_recovers_the_fraction_of_its_model(c: float) -> None:
    """Over 10 draws: unbiased, each within 0.015, and the 95% interval holding the truth in
    at least 8 (a draw outside it is expected one time in 20)."""
    ests = []
    for seed in range(10):
        p, ref, alt = model_counts(c, 4000, 35, 0.002, seed=1000 * seed + int(c * 1000))
        est = estimate(p, ref, alt, 0.002)
        assert abs(est.fraction - c) < 0.015 and est.high - est.low < 0.025, est
        assert est.sites == 4000 and est.hom_ref + est.het + est.hom_alt == 4000
        ests.append(est)
    fractions = np.array([e.fraction for e in ests])
    # (no bias: the mean within 3 standard errors of the truth)
    assert abs(float(fractions.mean()) - c) < 3 * float(fractions.std()) / math.sqrt(10) + 5e-4
    assert sum(e.low <= c <= e.high for e in ests) >= 8


@pytest.mark.parametrize("error", [0.01, 0.03])
def test_no_contamination_at_high_error_rates(error: float) -> None:
    """Errors are not taken for another person's reads: each wrong base at `error`, the two
    that are neither allele dropped from the counts, as site_counts drops them."""
    p, ref, alt = model_counts(0.0, 20_000, 35, error, seed=7)
    est = estimate(p, ref, alt, error)
    assert est.fraction < 0.002 and est.low == 0, est


@pytest.mark.parametrize("c", [0.0, 0.05, 0.1])
def test_reference_bias_is_not_contamination(c: float) -> None:
    """Reads that favour the reference at heterozygous sites (40% of them show the alternate
    allele) are measured, not charged to contamination; a model held at 1/2 overestimates
    (its intervals miss the truth)."""
    ests = []
    for seed in range(3):
        p, ref, alt = model_counts(c, 20_000, 35, 0.002, seed=seed, het=0.40)
        est = estimate(p, ref, alt, 0.002)
        assert est.het_fraction == pytest.approx(0.40, abs=0.01)
        ests.append(est)
        if c > 0:
            held = estimate(p, ref, alt, 0.002, het=0.5)
            assert held.low > c, held
    assert abs(float(np.mean([e.fraction for e in ests])) - c) < 0.003, ests
    assert sum(e.low <= c <= e.high for e in ests) >= 2


def test_estimate_is_the_global_maximum() -> None:
    """Few sites can give a likelihood of two peaks: the estimate is the higher one."""
    p = np.array([0.98, 0.08, 0.37, 0.79, 0.66])
    ref = np.array([24.0, 20, 2, 34, 16])
    alt = np.array([8.0, 25, 12, 27, 20])
    est = estimate(p, ref, alt, 0.001)
    grid = np.linspace(0, 0.5, 5001)
    best = max(log_likelihood(float(c), p, ref, alt, 0.001) for c in grid)
    assert log_likelihood(est.fraction, p, ref, alt, 0.001) >= best - 1e-6


def test_estimate_needs_sites() -> None:
    with pytest.raises(ValueError, match="no sites"):
        estimate(np.zeros(0), np.zeros(0), np.zeros(0), 0.001)


# ---------------------------------------------------------------------------------------------
# two simulated people


GENOME = 150_000
DEPTH = 40
SITES = 1_500
CROWDED = 200  # sites where the resource has a second common allele (left out)


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A genome, a resource of common SNVs (some with a second common allele), and BAMs of one
    person alone and mixed with 5% of another's reads (both people drawn from the resource's
    frequencies)."""
    d = tmp_path_factory.mktemp("contamination")
    contigs = random_genome(91, {"chr1": GENOME})
    seq = contigs[0][1]
    ref = write_fasta(d / "ref.fa", contigs)
    pysam.faidx(str(ref))
    rng = np.random.default_rng(92)
    positions = np.sort(rng.choice(np.arange(200, GENOME - 200, 60), SITES, replace=False))
    p = rng.uniform(0.05, 0.95, SITES)
    alts = ["ACGT"[("ACGT".index(seq[x]) + 1 + int(rng.integers(3))) % 4] for x in positions]
    header = pysam.VariantHeader()
    header.contigs.add("chr1", length=GENOME)
    header.add_line('##INFO=<ID=AF,Number=A,Type=Float,Description="Population frequency">')
    resource = d / "resource.vcf.gz"
    with pysam.VariantFile(str(resource), "wz", header=header) as out:
        for i, (x, a, f) in enumerate(zip(positions.tolist(), alts, p.tolist(), strict=True)):
            rec = out.new_record(contig="chr1", start=x, alleles=(seq[x], a))
            rec.info["AF"] = f
            out.write(rec)
            if i < CROWDED:  # a second allele, common, that neither person carries
                other = next(b for b in "ACGT" if b not in (seq[x], a))
                rec = out.new_record(contig="chr1", start=x, alleles=(seq[x], other))
                rec.info["AF"] = 0.2
                out.write(rec)
    pysam.tabix_index(str(resource), preset="vcf", force=True)

    def person(seed: int) -> list:
        r = np.random.default_rng(seed)
        gts = (r.random((SITES, 2)) < p[:, None]).astype(int)
        variants = [Variant("chr1", int(x) + 1, seq[x], a, (int(g[0]), int(g[1])))
                    for x, a, g in zip(positions, alts, gts, strict=True) if g.any()]
        return apply_variants(contigs, variants)

    pairs = DEPTH * GENOME // 300
    a1, a2 = simulate_pairs(person(93), pairs, seed=94)
    b1, b2 = simulate_pairs(person(95), pairs // 20, seed=96)
    index = Index.build(ref)
    bams = {"resource": resource, "ref": ref}
    for name, r1, r2 in (("pure", a1, a2),
                         ("mixed", a1[: pairs - pairs // 20] + b1, a2[: pairs - pairs // 20] + b2)):
        f1 = write_fastq(d / f"{name}_1.fq", r1)
        f2 = write_fastq(d / f"{name}_2.fq", r2)
        bams[name] = d / f"{name}.bam"
        Aligner(index, threads=2).align_fastq(f1, f2, bams[name],
                                              read_group=rf"@RG\tID:{name}\tSM:{name}")
    return bams


@needs_engine
def test_reads_of_two_people(people: dict[str, Path]) -> None:
    pure = estimate_contamination(people["ref"], people["pure"], people["resource"], threads=2)
    assert pure.fraction < 0.004 and pure.low == 0, pure
    mixed = estimate_contamination(people["ref"], people["mixed"], people["resource"],
                                   threads=2)
    assert mixed.low <= 0.05 <= mixed.high and abs(mixed.fraction - 0.05) < 0.01, mixed
    assert 0.9 * (SITES - CROWDED) <= mixed.sites <= SITES - CROWDED
    assert mixed.het > 0.2 * mixed.sites
    # the rarer half of the sites alone agrees
    rare = estimate_contamination(people["ref"], people["mixed"], people["resource"],
                                  max_af=0.5)
    assert rare.sites < mixed.sites and abs(rare.fraction - 0.05) < 0.015, rare


@needs_engine
def test_max_sites_reads_shards_spread_over_the_genome(people: dict[str, Path],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """With max_sites, shards are read in a spread order until they hold that many sites: fewer
    reads, the same answer within its wider interval."""
    import gmsaccel.call
    from gmsaccel.contamination import _spread

    assert sorted(_spread(15)) == list(range(15))
    assert sorted(_spread(15)[:4]) != [0, 1, 2, 3]  # (not the genome's first shards)
    monkeypatch.setattr(gmsaccel.call, "MIN_SHARD_SIZE", 10_000)  # 15 shards
    full = estimate_contamination(people["ref"], people["mixed"], people["resource"],
                                  max_sites=None)
    part = estimate_contamination(people["ref"], people["mixed"], people["resource"],
                                  max_sites=300)
    assert 300 <= part.sites < 0.6 * full.sites, (part, full)
    assert part.low <= 0.05 <= part.high and abs(part.fraction - 0.05) < 0.02, part
    with pytest.raises(ValueError, match="max_sites"):
        estimate_contamination(people["ref"], people["mixed"], people["resource"], max_sites=0)


@needs_engine
def test_cli_contamination_and_its_errors(people: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "c.json"
    proc = run_cli("contamination", "-f", people["ref"], "--resource", people["resource"],
                   people["mixed"], "-t", "2", "--json", out)
    assert proc.returncode == 0, proc.stderr
    bam, fraction, low, high, sites = proc.stdout.decode().strip().split("\t")
    assert bam == str(people["mixed"]) and float(low) <= float(fraction) <= float(high)
    saved = json.loads(out.read_text())
    assert saved["fraction"] == pytest.approx(float(fraction), abs=1e-5)
    assert saved["sites"] == int(sites) and b"contamination" in proc.stderr
    empty = tmp_path / "empty.vcf"
    empty.write_text("##fileformat=VCFv4.2\n##contig=<ID=chr1,length=150000>\n"
                     '##INFO=<ID=AF,Number=A,Type=Float,Description="AF">\n'
                     "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    pysam.tabix_index(str(empty), preset="vcf", force=True)
    for args, needle in (
            (["--resource", tmp_path / "none.vcf.gz", people["mixed"]], "no such file"),
            (["--resource", str(empty) + ".gz", people["mixed"]], "nothing to estimate from"),
            (["--resource", people["resource"], "--min-af", "0.6", "--max-af", "0.4",
              people["mixed"]], "need 0 < min_af <= max_af < 1"),
            (["--resource", people["resource"], tmp_path / "none.bam"], "none.bam")):
        proc = run_cli("contamination", "-f", people["ref"], *args, "--json",
                       tmp_path / "bad.json")
        err = proc.stderr.decode()
        assert proc.returncode == 1 and needle in err and "Traceback" not in err, err
        assert not (tmp_path / "bad.json").exists()


@needs_engine
def test_run_checks_contamination(people: dict[str, Path], tmp_path: Path) -> None:
    """run --germline-resource puts the estimate into the metrics and the report, and warns
    from 2%; a resource it cannot use fails before the alignment."""
    mixed = people["mixed"]
    reads = [mixed.with_name("mixed_1.fq"), mixed.with_name("mixed_2.fq")]
    out = tmp_path / "out"
    proc = run_cli("run", "-f", people["ref"], *reads, "--sample", "MIX", "-o", out,
                   "--germline-resource", people["resource"], "-t", "2")
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    metrics = json.loads((out / "MIX.metrics.json").read_text())
    cont = metrics["contamination"]
    assert abs(cont["fraction"] - 0.05) < 0.01 and cont["low"] <= 0.05 <= cont["high"], cont
    assert "warning: MIX:" in err and "another person's" in err, err
    assert "Contamination" in (out / "MIX.report.html").read_text()
    bad = tmp_path / "bad"
    proc = run_cli("run", "-f", people["ref"], *reads, "--sample", "MIX", "-o", bad,
                   "--germline-resource", tmp_path / "none.vcf.gz")
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "none.vcf.gz: no such file" in err, err
    assert not list(bad.glob("MIX.*"))
    # a BAM too shallow for an estimate: a warning, the run stands
    shallow = []
    for mate, path in enumerate(reads, 1):
        lines = path.read_text().splitlines(keepends=True)[: 4 * 300]
        shallow.append(tmp_path / f"shallow_{mate}.fq")
        shallow[-1].write_text("".join(lines))
    proc = run_cli("run", "-f", people["ref"], *shallow, "--sample", "LOW", "-o", out,
                   "--germline-resource", people["resource"])
    err = proc.stderr.decode()
    assert proc.returncode == 0 and "warning: no contamination estimate" in err, err
    assert json.loads((out / "LOW.metrics.json").read_text())["contamination"] is None
    renamed = tmp_path / "renamed.vcf"
    renamed.write_text(pysam.bcftools.view(str(people["resource"]), "-Ov").replace("chr1", "1"))
    pysam.tabix_index(str(renamed), preset="vcf", force=True)
    proc = run_cli("run", "-f", people["ref"], *reads, "--sample", "MIX", "-o", bad,
                   "--germline-resource", str(renamed) + ".gz")
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "is it the same build?" in err, err
    assert not list(bad.glob("MIX.*"))


@needs_engine
def test_call_estimates_contamination_first(people: dict[str, Path], tmp_path: Path) -> None:
    """call --somatic --contamination auto estimates it from the tumour's reads (as the
    contamination command does) and calls with that fraction."""
    out, metrics = tmp_path / "auto.vcf.gz", tmp_path / "m.json"
    proc = run_cli("call", "-f", people["ref"], "--somatic", people["mixed"],
                   "--germline-resource", people["resource"], "--contamination", "auto",
                   "-o", out, "--metrics", metrics, "-t", "2")
    assert proc.returncode == 0, proc.stderr
    est = estimate_contamination(people["ref"], people["mixed"], people["resource"])
    with pysam.VariantFile(str(out)) as vf:
        line = next(r for r in vf.header.records if r.key == "contamination")
        assert float(line.value) == pytest.approx(est.fraction, rel=1e-5)
        assert "contamination" in vf.header.filters
    assert json.loads(metrics.read_text())["contamination_estimate"]["fraction"] == \
        pytest.approx(est.fraction)
    for args, needle in ((["--somatic", "--contamination", "auto"], "goes with"),
                         (["--somatic", "--germline-resource", people["resource"],
                           "--contamination", "some"], "expected a fraction or auto")):
        proc = run_cli("call", "-f", people["ref"], *args, people["mixed"], "-o",
                       tmp_path / "bad.vcf.gz")
        err = proc.stderr.decode()
        assert proc.returncode != 0 and needle in err and "Traceback" not in err, err
        assert not (tmp_path / "bad.vcf.gz").exists()



def test_a_read_group_against_known_genotypes() -> None:
    """With the sample's genotypes known, a read group's foreign reads are found at its few
    reads a site: 4 reads a site at 5,000 sites, 8% of them another person's."""
    rng = np.random.default_rng(11)
    n = 5_000
    p = rng.uniform(0.05, 0.95, n)
    sample = (rng.random((n, 2)) < p[:, None]).sum(axis=1) / 2
    other = (rng.random((n, 2)) < p[:, None]).sum(axis=1) / 2
    depth = rng.poisson(4, n)
    foreign = rng.binomial(depth, 0.08)
    alt = rng.binomial(depth - foreign, sample) + rng.binomial(foreign, other)
    known = np.where(np.arange(3)[None, :] == (2 * sample).astype(int)[:, None], 0.0, -np.inf)
    q = np.clip(p, 1e-6, 1 - 1e-6)  # (the other person's: Hardy-Weinberg)
    known = known[:, :, None] + np.log(np.stack([(1 - q) ** 2, 2 * q * (1 - q), q * q],
                                                axis=1))[:, None, :]
    best, low, high = estimate_given_genotypes(p, known, depth - alt, alt, 1e-4)
    assert low <= 0.08 <= high and abs(best - 0.08) < 0.015 and high - low < 0.05
    clean = rng.binomial(depth, sample)  # (the same sites, no one else's reads)
    best, low, _ = estimate_given_genotypes(p, known, depth - clean, clean, 1e-4)
    assert low == 0 and best < 0.01


def lane_fastqs(people: dict[str, Path], d: Path) -> tuple[list[Path], list[Path]]:
    """Two lanes of one sample, of disjoint reads: the first person's first half of pairs, and
    the mixed reads' second half (that person's other pairs and, as 1,000 of its 10,000, the
    second person's: 10%). The mates' files of each lane."""
    src = people["mixed"].parent
    first: list[Path] = []
    second: list[Path] = []
    for mate, files in ((1, first), (2, second)):
        pure = (src / f"pure_{mate}.fq").read_text().splitlines(keepends=True)
        mixed = (src / f"mixed_{mate}.fq").read_text().splitlines(keepends=True)
        half = 4 * (len(pure) // 8)
        files.append(d / f"lane1_{mate}.fq")
        files[-1].write_text("".join(pure[:half]))
        files.append(d / f"lane2_{mate}.fq")
        files[-1].write_text("".join(mixed[half:]))
    return first, second


def lanes_bam(people: dict[str, Path], path: Path) -> Path:
    """lane_fastqs' two lanes aligned into one BAM, read groups pure (clean) and mixed (10%
    another person's)."""
    first, second = lane_fastqs(people, path.parent)
    Aligner(Index.build(people["ref"]), threads=2).align_fastq(
        first, second, path,
        read_group=[r"@RG\tID:pure\tSM:S\tLB:l", r"@RG\tID:mixed\tSM:S\tLB:l"])
    return path


def simulated_groups(seed: int, fractions: tuple[float, ...], reads: int, n: int = 5_000,
                     shared: bool = True) -> tuple[np.ndarray, ...]:
    """Counts of read groups of one sample at n sites: group k has fractions[k] of its reads
    from another person (the same in every group, or with shared=False a different one in
    each), about `reads` a site, and each base is misread at 0.002 as each of the three
    others. Returns p, ref, alt, other (the sample's) and per_group (sites x groups x [ref,
    alt, other])."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.95, n)
    sample = (rng.random((n, 2)) < p[:, None]).sum(axis=1) / 2
    other = (rng.random((n, 2)) < p[:, None]).sum(axis=1) / 2
    per_group = np.zeros((n, len(fractions), 3))
    e = 0.002
    for k, c in enumerate(fractions):
        if k and not shared:
            other = (rng.random((n, 2)) < p[:, None]).sum(axis=1) / 2
        depth = rng.poisson(reads, n)
        foreign = rng.binomial(depth, c)
        true_alt = rng.binomial(depth - foreign, sample) + rng.binomial(foreign, other)
        true_ref = depth - true_alt
        alt_as_ref, ref_as_alt = rng.binomial(true_alt, e), rng.binomial(true_ref, e)
        alt_lost = rng.binomial(true_alt - alt_as_ref, 2 * e / (1 - e))
        ref_lost = rng.binomial(true_ref - ref_as_alt, 2 * e / (1 - e))
        per_group[:, k] = np.stack([true_ref - ref_as_alt - ref_lost + alt_as_ref,
                                    true_alt - alt_as_ref - alt_lost + ref_as_alt,
                                    alt_lost + ref_lost], axis=1)
    ref, alt, wrong = (per_group[:, :, j].sum(axis=1) for j in range(3))
    return p, ref, alt, wrong, per_group


@pytest.mark.parametrize(("fractions", "reads", "shared"), [
    ((0.2, 0.0), 15, True), ((0.2, 0.2), 15, True), ((0.1, 0.1), 15, False),
    ((0.0, 0.05, 0.0, 0.0), 10, True), ((0.4, 0.0), 30, True), ((0.03,) + (0.0,) * 7, 4, True)])
def test_each_group_against_the_others_genotypes(fractions: tuple[float, ...], reads: int,
                                                 shared: bool) -> None:
    """Read groups of one sample, some with another person's reads (one person in all, or
    each its own): over 6 samples, each group's estimate is its truth on average, however
    much of the depth it is and however mixed, and 95% intervals hold the truth about as
    often as they should; the sample's is estimate's. (Genotypes called from reads including
    the group's own would drop the very sites its foreign reads make uncertain, and read a
    20% lane as 17%; the sample's genotype alone would read two lanes of one contaminant low,
    and both genotypes alone two lanes of different ones.)"""
    found, held = [], 0
    for seed in range(6):
        p, ref, alt, wrong, per_group = simulated_groups(seed, fractions, reads, shared=shared)
        error = wrong.sum() / (2 * (ref + alt + wrong).sum())
        whole, groups = estimate_groups(p, ref, alt, wrong, per_group,
                                        [f"L{k}" for k in range(len(fractions))], error, 2)
        assert whole == estimate(p, ref, alt, error)
        assert len(groups) == len(fractions)  # (no reads outside the groups)
        found.append([g.fraction for g in groups])
        held += sum(g.low <= c <= g.high for g, c in zip(groups, fractions, strict=True))
    bias = np.mean(found, axis=0) - np.array(fractions)
    assert np.all(np.abs(bias) < 0.005), bias
    assert held >= 0.8 * 6 * len(fractions), held  # (fixed seeds: no chance failures)
    with pytest.raises(ValueError, match="exceed the sample's"):
        estimate_groups(p, ref, alt, wrong, 2 * per_group, ["a"] * len(fractions), error)


@needs_engine
def test_contamination_by_read_group(people: dict[str, Path], tmp_path: Path) -> None:
    """Two lanes of one BAM, one clean and one with 10% of another person's reads: each read
    group's estimate finds its own, and the sample's is estimate_contamination's; the command
    prints a line per read group; a BAM without read groups is an error naming it."""
    merged = lanes_bam(people, tmp_path / "lanes.bam")
    whole, groups = estimate_contamination_by_read_group(people["ref"], merged,
                                                         people["resource"], threads=2)
    by = {g.read_group: g for g in groups}
    assert list(by) == ["pure", "mixed"]
    assert by["pure"].low == 0 and by["pure"].high < 0.02, by["pure"]
    assert by["mixed"].low <= 0.10 <= by["mixed"].high, by["mixed"]
    assert abs(by["mixed"].fraction - 0.10) < 0.015 and by["mixed"].sites > 500
    assert whole == estimate_contamination(people["ref"], merged, people["resource"], threads=2)
    assert 0.035 < whole.fraction < 0.065
    out = tmp_path / "c.json"
    proc = run_cli("contamination", "-f", people["ref"], "--resource", people["resource"],
                   merged, "--per-read-group", "-t", "2", "--json", out)
    assert proc.returncode == 0, proc.stderr
    lines = [ln.split("\t") for ln in proc.stdout.decode().splitlines()]
    assert [ln[:2] for ln in lines[1:]] == [["RG", "pure"], ["RG", "mixed"]]
    assert float(lines[2][2]) == pytest.approx(by["mixed"].fraction, abs=1e-5)
    saved = json.loads(out.read_text())
    assert [g["read_group"] for g in saved["read_groups"]] == ["pure", "mixed"]
    # a read group without reads at the sites: no figures (null in JSON, which has no NaN)
    empty = ReadGroupEstimate("idle", math.nan, math.nan, math.nan, 0, 0, math.nan).as_dict()
    assert empty["fraction"] is None and json.loads(json.dumps(empty))["sites"] == 0
    bare = tmp_path / "bare.bam"
    with pysam.AlignmentFile(str(people["pure"])) as f:
        header = {k: v for k, v in f.header.to_dict().items() if k != "RG"}
        with pysam.AlignmentFile(str(bare), "wb", header=header) as w:
            for r in f:
                r.set_tag("RG", None)
                w.write(r)
    pysam.index(str(bare))
    proc = run_cli("contamination", "-f", people["ref"], "--resource", people["resource"],
                   bare, "--per-read-group")
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "bare.bam: no @RG lines" in err and "Traceback" not in err
    junk = tmp_path / "junk.bam"
    junk.write_text("not a BAM\n")
    proc = run_cli("contamination", "-f", people["ref"], "--resource", people["resource"],
                   junk, "--per-read-group")
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "junk.bam" in err and "Traceback" not in err, err
    # the mixed lane's reads untagged: they are the '*' group, not silently left out
    untagged = tmp_path / "untagged.bam"
    with pysam.AlignmentFile(str(merged)) as f, \
            pysam.AlignmentFile(str(untagged), "wb", header=f.header) as w:
        for r in f:
            if r.get_tag("RG") == "mixed":
                r.set_tag("RG", None)
            w.write(r)
    pysam.index(str(untagged))
    _, groups = estimate_contamination_by_read_group(people["ref"], untagged,
                                                     people["resource"], threads=2)
    by = {g.read_group: g for g in groups}
    assert list(by) == ["pure", "mixed", "*"] and by["mixed"].sites == 0
    assert by["*"].low <= 0.10 <= by["*"].high, by["*"]


@needs_engine
def test_run_checks_each_lane(people: dict[str, Path], tmp_path: Path) -> None:
    """run of a sample's lanes with --germline-resource estimates each lane too: the lane with
    another person's reads (10%) gets its estimate and a warning naming it, the metrics hold every
    lane's, and the report says which lane is the most mixed."""
    first, second = lane_fastqs(people, tmp_path)
    out = tmp_path / "out"
    proc = run_cli("run", "-f", people["ref"], ",".join(map(str, first)),
                   ",".join(map(str, second)), "--sample", "S", "-o", out,
                   "--germline-resource", people["resource"], "-t", "2")
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    cont = json.loads((out / "S.metrics.json").read_text())["contamination"]
    by = {g["read_group"]: g for g in cont["read_groups"]}
    assert list(by) == ["S.1", "S.2"]
    assert by["S.1"]["low"] == 0 and by["S.1"]["high"] < 0.02
    assert by["S.2"]["low"] <= 0.10 <= by["S.2"]["high"]
    warnings = [ln for ln in err.splitlines() if "warning" in ln]
    assert any("warning: S: read group S.2:" in ln for ln in warnings), err
    assert not any("S.1" in ln for ln in warnings), err
    assert "up to" in (out / "S.report.html").read_text()


@needs_engine
def test_read_group_counts_from_one_pass(people: dict[str, Path], tmp_path: Path) -> None:
    """The engine's pileup of several read groups in one pass gives each group the counts a
    pileup of a BAM of that group's reads alone gives (split out by samtools), and together
    the whole's."""
    merged = lanes_bam(people, tmp_path / "lanes.bam")
    groups = ["mixed", "pure", "absent"]
    at = list(range(10_000, 60_000, 7))
    both = _core.pileup(str(merged), "chr1", 10_000, 60_000, read_groups=groups, group_at=at)
    assert both["group_base_counts"].shape == (3, len(at), 5)
    rows = np.array(at) - 10_000
    for k, rg in enumerate(groups):
        split = tmp_path / f"{rg}.bam"
        pysam.view("-b", "-r", rg, "-o", str(split), str(merged), catch_stdout=False)
        pysam.index(str(split))
        alone = _core.pileup(str(split), "chr1", 10_000, 60_000)
        assert np.array_equal(both["group_base_counts"][k], alone["base_counts"][rows]), rg
    assert not both["group_base_counts"][2].any() and both["group_base_counts"][0].any()
    assert np.array_equal(both["group_base_counts"].sum(axis=0), both["base_counts"][rows])
    with pytest.raises(ValueError, match="outside the region"):
        _core.pileup(str(merged), "chr1", 10_000, 60_000, read_groups=groups, group_at=[9_999])
