"""Tests for gmsaccel.simulate: the truth it writes must be exactly right."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pysam
import pysam.bcftools
import pytest

from gmsaccel.simulate import (
    Haplotype,
    Variant,
    bundled_genome_path,
    left_normalize,
    plant_variants,
    read_fasta,
    simulate_demo,
    simulate_pairs,
    write_fastq,
    write_truth_vcf,
)

LAMBDA_SHA256 = "36432a40f602258d19ae7c8152ddbc30390b559f2859c01d7047c77b048c71b3"
COMP = str.maketrans("ACGTN", "TGCAN")


def revcomp(s: str) -> str:
    return s.translate(COMP)[::-1]


def random_seq(rng: np.random.Generator, n: int) -> str:
    return np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, n)].tobytes().decode()


def repeat_rich_genome(seed: int = 7) -> dict[str, str]:
    """Random sequence interleaved with homopolymers, tandem repeats and an N gap."""
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(400):
        parts.append(random_seq(rng, int(rng.integers(40, 120))))
        unit = random_seq(rng, int(rng.integers(1, 5)))
        parts.append(unit * int(rng.integers(3, 12)))
        if i == 200:
            parts.append("N" * 500)
    return {"chr_rep": "".join(parts), "ctg2": random_seq(rng, 20_000)}


@pytest.fixture(scope="module")
def lambda_ref() -> list[tuple[str, str]]:
    return read_fasta(bundled_genome_path())


# ---------------------------------------------------------------------------------------------
# independent reference implementations used as oracles


def apply_by_hand(seq: str, variants: list[Variant], hap: int) -> str:
    """Apply carried variants right to left by string surgery."""
    for v in sorted(variants, key=lambda v: v.pos, reverse=True):
        if v.genotype[hap]:
            a = v.pos - 1
            assert seq[a : a + len(v.ref)] == v.ref
            seq = seq[:a] + v.alt + seq[a + len(v.ref) :]
    return seq


def hap_to_ref(x: int, variants: list[Variant], hap: int) -> int:
    """0-based haplotype offset -> 0-based reference offset, one variant at a time."""
    delta = 0
    for v in sorted(variants, key=lambda v: v.pos):
        if not v.genotype[hap]:
            continue
        a = v.pos - 1
        ha = a + delta  # haplotype offset of the anchor / SNV base
        if x <= ha:
            break
        grow = len(v.alt) - len(v.ref)
        if 0 < grow and x <= ha + grow:
            return a + 1  # inside the inserted bases: next reference base
        delta += grow
    return x - delta


def parse_name(name: str) -> tuple[str, list[int], int]:
    head, pair = name.split(":")
    contig, *fields = head.rsplit("_", 9)
    return contig, [int(f) for f in fields], int(pair)


# ---------------------------------------------------------------------------------------------


def test_bundled_genome_is_lambda(lambda_ref: list[tuple[str, str]]) -> None:
    assert len(lambda_ref) == 1
    name, seq = lambda_ref[0]
    assert name == "NC_001416.1"
    assert len(seq) == 48_502
    assert seq.startswith("GGGCGGCGACCT")
    assert hashlib.sha256(seq.encode()).hexdigest() == LAMBDA_SHA256
    with gzip.open(bundled_genome_path(), "rt") as fh:  # BGZF is plain gzip too
        assert fh.readline().startswith(">NC_001416.1 Enterobacteria phage lambda")


@pytest.mark.parametrize(
    ("seq", "anchor", "ref", "alt", "expected"),
    [
        # deletion of one A from a homopolymer -> anchored on the base before the run
        ("GCAAAAAAT", 6, "AA", "A", (1, "CA", "C")),
        # insertion of an A into the same homopolymer
        ("GCAAAAAAT", 7, "A", "AA", (1, "C", "CA")),
        # deletion of a CA unit from a tandem repeat
        ("TTCACACAGG", 5, "ACA", "A", (1, "TCA", "T")),
        # insertion of an AC unit at the end of a tandem repeat
        ("TTCACACAGG", 7, "A", "ACA", (1, "T", "TCA")),
        # nothing to shift
        ("ACGTACGT", 3, "TAC", "T", (3, "TAC", "T")),
        # SNVs are untouched
        ("AAAAAA", 3, "A", "C", (3, "A", "C")),
        # never shifted onto offset 0 (the anchor must exist)
        ("AAAAAA", 3, "AA", "A", (0, "AA", "A")),
    ],
)
def test_left_normalize(
    seq: str, anchor: int, ref: str, alt: str, expected: tuple[int, str, str]
) -> None:
    assert seq[anchor : anchor + len(ref)] == ref
    got = left_normalize(seq, anchor, ref, alt)
    assert got == expected
    # the normalised form describes the same haplotype
    a, r, x = got
    assert seq[:a] + x + seq[a + len(r) :] == seq[:anchor] + alt + seq[anchor + len(ref) :]


def test_planted_variants_properties() -> None:
    ref = repeat_rich_genome()
    haps, variants = plant_variants(ref, rate=0.01, indel_fraction=0.5, seed=3)
    assert len(variants) > 150
    assert variants == sorted(variants, key=lambda v: (list(ref).index(v.contig), v.pos))
    n_indel = n_het = 0
    for v in variants:
        seq = ref[v.contig]
        a = v.pos - 1
        assert seq[a : a + len(v.ref)] == v.ref
        assert "N" not in v.ref + v.alt
        assert 30 <= a and v.end <= len(seq) - 30
        assert v.ref != v.alt and v.ref[0] == v.alt[0] or len(v.ref) == len(v.alt) == 1
        assert v.genotype in {(0, 1), (1, 0), (1, 1)}
        n_het += v.genotype != (1, 1)
        if len(v.ref) != len(v.alt):
            n_indel += 1
            assert 1 <= abs(len(v.ref) - len(v.alt)) <= 10
            assert min(len(v.ref), len(v.alt)) == 1
            # left-normalised: cannot move one more base to the left
            changed = v.ref[1:] if len(v.ref) > 1 else v.alt[1:]
            assert seq[a] != changed[-1]
    for v, w in zip(variants, variants[1:], strict=False):
        if v.contig == w.contig:
            assert w.pos - v.end > 50
    assert 0.35 < n_indel / len(variants) < 0.65
    assert 0.55 < n_het / len(variants) < 0.78
    # some indels were actually shifted left inside repeats
    assert any(ref[v.contig][v.pos] == ref[v.contig][v.pos + 1] for v in variants if len(v.ref) > 1)



def test_planted_variants_close_together() -> None:
    # A sample far from its reference (3% of bases): variants a few bases apart, each still a
    # true reference allele, and the haplotypes carry them all.
    ref = repeat_rich_genome()
    haps, variants = plant_variants(ref, rate=0.03, ploidy=1, seed=4, min_spacing=4)
    assert len(variants) > 0.02 * sum(len(s) for s in ref.values())
    gaps = [w.pos - v.end for v, w in zip(variants, variants[1:], strict=False)
            if v.contig == w.contig]
    assert min(gaps) > 4 and sum(g <= 50 for g in gaps) > len(gaps) // 2  # (default: > 50)
    for v in variants:
        assert ref[v.contig][v.pos - 1:v.pos - 1 + len(v.ref)] == v.ref
    for h in haps:
        assert h.seq == apply_by_hand(ref[h.contig], [v for v in variants if v.contig == h.contig],
                                      h.index)

def test_apply_variants_reproduces_haplotypes() -> None:
    ref = repeat_rich_genome()
    haps, variants = plant_variants(ref, rate=0.01, indel_fraction=0.5, seed=5)
    assert [(h.contig, h.index) for h in haps] == [(c, i) for c in ref for i in (0, 1)]
    for h in haps:
        vs = [v for v in variants if v.contig == h.contig]
        assert h.seq == apply_by_hand(ref[h.contig], vs, h.index)
    # a haploid plant yields hom-alt genotypes only
    haps1, variants1 = plant_variants(ref, rate=0.005, ploidy=1, seed=5)
    assert len(haps1) == 2 and all(v.genotype == (1,) for v in variants1)


def test_reads_match_haplotypes_and_reference(lambda_ref: list[tuple[str, str]]) -> None:
    ref = dict(lambda_ref) | repeat_rich_genome()
    haps, variants = plant_variants(ref, rate=0.004, indel_fraction=0.5, seed=11)
    rl = 100
    r1, r2 = simulate_pairs(haps, 4000, read_length=rl, error_rate=(0, 0), seed=2)
    assert len(r1) == len(r2) == 4000
    hap_by_key: dict[tuple[str, int], Haplotype] = {(h.contig, h.index): h for h in haps}
    by_contig: dict[str, list[Variant]] = {}
    for v in variants:
        by_contig.setdefault(v.contig, []).append(v)
    clean = checked = 0
    pairs_seen = set()
    for (n1, s1, q1), (n2, s2, q2) in zip(r1, r2, strict=True):
        assert n1 == n2
        contig, f, pair = parse_name(n1)
        pairs_seen.add(pair)
        pos1, pos2, st1, st2, hidx, hp1, hp2, e1, e2 = f
        assert {st1, st2} == {0, 1} and e1 == e2 == 0
        assert len(s1) == len(s2) == len(q1) == len(q2) == rl
        hap = hap_by_key[(contig, hidx)]
        vs = by_contig.get(contig, [])
        for seq, st, pos, hp in ((s1, st1, pos1, hp1), (s2, st2, pos2, hp2)):
            assert 1 <= hp and hp - 1 + rl <= len(hap.seq)
            sub = hap.seq[hp - 1 : hp - 1 + rl]
            assert seq == (revcomp(sub) if st else sub)
            assert pos - 1 == hap_to_ref(hp - 1, vs, hidx)
            checked += 1
            carried = [v for v in vs if v.genotype[hidx]]
            # (an insertion anchored just left of the read may still put bases at its start)
            if not any(v.pos <= pos - 1 + rl and v.end >= pos - 1 for v in carried):
                clean += 1
                rsub = ref[contig][pos - 1 : pos - 1 + rl]
                assert seq == (revcomp(rsub) if st else rsub)
        # FR orientation: the forward read is leftmost on the haplotype
        fwd_hp, rev_hp = (hp1, hp2) if st1 == 0 else (hp2, hp1)
        assert fwd_hp <= rev_hp + rl
    assert pairs_seen == set(range(4000))
    assert clean > 0.5 * checked
    # reads cover the contigs' ends but never pass them
    starts = [parse_name(n)[1][5] for n, _, _ in r1 if n.startswith("ctg2_")]
    assert min(starts) < 300


def test_truth_vcf_round_trip_and_bcftools(tmp_path: Path) -> None:
    ref = repeat_rich_genome()
    fa = tmp_path / "ref.fa"
    fa.write_text("".join(f">{n}\n{s}\n" for n, s in ref.items()))
    pysam.faidx(str(fa))
    _, variants = plant_variants(ref, rate=0.01, indel_fraction=0.5, seed=9)
    vcf = write_truth_vcf(tmp_path / "truth.vcf.gz", str(fa), variants, sample="S1")
    assert Path(str(vcf) + ".tbi").exists()
    with pysam.VariantFile(str(vcf)) as vf:
        assert list(vf.header.contigs) == list(ref)
        assert [vf.header.contigs[c].length for c in ref] == [len(s) for s in ref.values()]
        assert list(vf.header.samples) == ["S1"]
        got = [Variant(r.chrom, r.pos, r.ref, r.alts[0], tuple(r.samples["S1"]["GT"])) for r in vf]
        assert len(list(vf.fetch("ctg2"))) == sum(v.contig == "ctg2" for v in variants)
    assert got == variants
    # REF alleles match the FASTA (bcftools exits non-zero otherwise) ...
    pysam.bcftools.norm("--check-ref", "e", "-f", str(fa), str(vcf), catch_stdout=True)
    # ... and bcftools finds nothing to realign: every indel is already left-normalised
    normed = tmp_path / "norm.vcf"
    pysam.bcftools.norm("-f", str(fa), "-o", str(normed), str(vcf), catch_stdout=False)
    with pysam.VariantFile(str(normed)) as vf:
        assert [(r.chrom, r.pos, r.ref, r.alts[0]) for r in vf] == [
            (v.contig, v.pos, v.ref, v.alt) for v in variants
        ]
    # a dict reference works as well
    plain = write_truth_vcf(tmp_path / "t.vcf", ref, variants[:3])
    assert plain.read_text().count("\n##contig=") == 2


def test_insert_size_distribution(lambda_ref: list[tuple[str, str]]) -> None:
    haps, variants = plant_variants(lambda_ref, rate=0, seed=1)
    assert variants == []
    r1, _ = simulate_pairs(haps, 20_000, read_length=150, insert_mean=400, insert_sd=40, seed=4)
    tlen = []
    for name, _, _ in r1:
        _, f, _ = parse_name(name)
        pos1, pos2, st1 = f[0], f[1], f[2]
        assert f[5:7] == f[0:2]  # no variants: haplotype == reference coordinates
        left, right = (pos1, pos2) if st1 == 0 else (pos2, pos1)
        tlen.append(right + 150 - left)
    t = np.asarray(tlen)
    assert abs(t.mean() - 400) < 1.0  # standard error 0.28
    assert abs(t.std() - 40) < 2.0
    # both strands for read 1, about equally often
    frac_rev = np.mean([parse_name(n)[1][2] for n, _, _ in r1])
    assert 0.47 < frac_rev < 0.53


def test_error_rate_and_qualities(lambda_ref: list[tuple[str, str]]) -> None:
    haps, _ = plant_variants(lambda_ref, rate=0, seed=1)
    seq = haps[0].seq
    rl, lo, hi = 100, 0.01, 0.05
    r1, r2 = simulate_pairs(haps, 10_000, read_length=rl, error_rate=(lo, hi), seed=8)
    mism = np.zeros(rl)
    total = 0
    for reads, idx in ((r1, 0), (r2, 1)):
        for name, s, _q in reads:
            _, f, _ = parse_name(name)
            st, hp, nerr = f[2 + idx], f[5 + idx], f[7 + idx]
            truth = seq[hp - 1 : hp - 1 + rl]
            if st:
                truth = revcomp(truth)
            diff = np.frombuffer(s.encode(), np.uint8) != np.frombuffer(truth.encode(), np.uint8)
            assert diff.sum() == nerr
            assert set(s) <= set("ACGT")
            mism += diff
            total += 1
    rate = mism / total
    expected = lo + (hi - lo) * np.arange(rl) / (rl - 1)
    assert abs(rate.mean() - expected.mean()) < 0.002
    assert abs(rate[:20].mean() - expected[:20].mean()) < 0.003
    assert abs(rate[-20:].mean() - expected[-20:].mean()) < 0.004
    slope = np.polyfit(np.arange(rl), rate, 1)[0] * (rl - 1)
    assert abs(slope - (hi - lo)) < 0.008
    q = np.frombuffer(r1[0][2].encode(), np.uint8).astype(float) - 33
    assert np.all(np.abs(10 ** (-q / 10) / expected - 1) < 0.13)
    assert q[0] == 20 and q[-1] == 13
    # error-free reads get the top quality
    _, e0 = simulate_pairs(haps, 5, read_length=rl, error_rate=(0, 0), seed=8)
    assert set(e0[0][2]) == {"J"}


def test_determinism(lambda_ref: list[tuple[str, str]]) -> None:
    a = plant_variants(lambda_ref, rate=0.003, seed=42)
    b = plant_variants(lambda_ref, rate=0.003, seed=42)
    c = plant_variants(lambda_ref, rate=0.003, seed=43)
    assert a[1] == b[1] and [h.seq for h in a[0]] == [h.seq for h in b[0]]
    assert a[1] != c[1]
    ra = simulate_pairs(a[0], 500, seed=1)
    rb = simulate_pairs(b[0], 500, seed=1)
    rc = simulate_pairs(a[0], 500, seed=2)
    assert ra == rb
    assert ra != rc


def test_write_fastq_plain_and_gzip(tmp_path: Path) -> None:
    reads = [("r_1_2:0", "ACGT", "IIII"), ("r_3_4:1", "TTGA", "#I#I")]
    for name in ("x.fq", "x.fq.gz"):
        p = write_fastq(tmp_path / name, reads)
        with pysam.FastxFile(str(p)) as fh:
            assert [(r.name, r.sequence, r.quality) for r in fh] == reads
    assert (tmp_path / "x.fq.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert (tmp_path / "x.fq").read_text().startswith("@r_1_2:0\nACGT\n+\nIIII\n")


def test_simulate_demo(tmp_path: Path, lambda_ref: list[tuple[str, str]]) -> None:
    files = simulate_demo(tmp_path / "demo", n_pairs=300, seed=5)
    assert files.ref.read_text().startswith(">NC_001416.1\nGGGCGGCGACCT")
    assert Path(str(files.ref) + ".fai").exists()
    assert read_fasta(files.ref) == lambda_ref
    with pysam.FastxFile(str(files.reads1)) as f1, pysam.FastxFile(str(files.reads2)) as f2:
        n1 = [r.name for r in f1]
        n2 = [r.name for r in f2]
    assert n1 == n2 and len(n1) == 300
    assert all(n.startswith("NC_001416.1_") for n in n1)
    with pysam.VariantFile(str(files.truth)) as vf:
        assert len(list(vf)) > 10
    # same seed, same bytes
    again = simulate_demo(tmp_path / "demo2", n_pairs=300, seed=5)
    for x, y in zip(files, again, strict=True):
        if x.suffix == ".gz" and "vcf" not in x.name:
            assert x.read_bytes() == y.read_bytes()


def test_fragment_geometry_is_exact() -> None:
    """Fragments as long as the haplotype pin both reads to its two ends, off-by-ones included."""
    seq = random_seq(np.random.default_rng(3), 400)
    haps, _ = plant_variants({"tiny": seq}, rate=0)
    r1, r2 = simulate_pairs(
        haps, 200, read_length=150, insert_mean=400, insert_sd=0, error_rate=(0, 0), seed=6
    )
    strands = set()
    for (name, s1, _), (_, s2, _) in zip(r1, r2, strict=True):
        _, f, _ = parse_name(name)
        strands.add(f[2])
        fwd, rev = (s1, s2) if f[2] == 0 else (s2, s1)
        assert fwd == seq[:150] and rev == revcomp(seq[-150:])
        assert sorted(f[0:2]) == [1, 251]
    assert strands == {0, 1}
    # longer than the haplotype: clipped to it, never past its ends
    r1, _ = simulate_pairs(haps, 50, read_length=150, insert_mean=1000, insert_sd=0, seed=6)
    assert all(sorted(parse_name(n)[1][0:2]) == [1, 251] for n, _, _ in r1)
