"""Region loading, pileup counts and candidate alleles against pysam, samtools and bcftools."""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pysam
import pysam.bcftools
import pytest
from conftest import Dataset, random_genome, write_fasta
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gmsaccel import _core
from gmsaccel.align import Aligner

MPILEUP_DIR = Path("/usr/share/samtools/test/mpileup")  # Debian package samtools-test
SKIP = 0x4 | 0x100 | 0x200 | 0x400  # the default skip flags, as pysam's read_callback="all"
M, I, D, N, S, H, P, EQ, X = 0, 1, 2, 3, 4, 5, 6, 7, 8  # noqa: E741
BASES = "ACGT"
CODE = {b: i for i, b in enumerate("ACGTN")}

Read = dict  # keyword arguments of make_segment


# ---------------------------------------------------------------------------------------------
# Helpers: writing BAMs, independent expectations


def make_segment(header: pysam.AlignmentHeader, *, name: str, contig: str, pos: int,
                 cigar: list[tuple[int, int]] | None, seq: str, qual: list[int] | None,
                 flag: int = 0, mapq: int = 60, mate: tuple[str, int] | None = None,
                 ) -> pysam.AlignedSegment:
    a = pysam.AlignedSegment(header)
    a.query_name = name
    a.flag = flag
    a.reference_name = contig
    a.reference_start = pos
    a.mapping_quality = mapq
    if cigar:
        a.cigartuples = cigar
    a.query_sequence = seq
    if qual is not None:
        a.query_qualities = pysam.qualitystring_to_array("".join(chr(q + 33) for q in qual))
    if mate:
        a.next_reference_name, a.next_reference_start = mate
    return a


def write_bam(path: Path, contigs: list[tuple[str, int]], reads: Iterable[Read], *,
              sort: bool = True, index: bool = True, so: str = "coordinate") -> Path:
    header = pysam.AlignmentHeader.from_dict({
        "HD": {"VN": "1.6", "SO": so},
        "SQ": [{"SN": n, "LN": ln} for n, ln in contigs],
        "RG": [{"ID": "rg1", "SM": "sampleX"}],
    })
    raw = path.with_suffix(".raw.bam") if sort else path
    with pysam.AlignmentFile(str(raw), "wb", header=header) as out:
        for r in reads:
            out.write(make_segment(header, **r))
    if sort:
        pysam.sort("-o", str(path), str(raw))
        raw.unlink()
    if index:
        pysam.index(str(path))
    return path


def passing(bam: Path, contig: str, start: int, end: int) -> list[pysam.AlignedSegment]:
    with pysam.AlignmentFile(str(bam)) as f:
        return [r for r in f.fetch(contig, start, end)
                if not r.flag & SKIP and not r.is_unmapped and r.cigartuples]


def expected_spans(reads: list[pysam.AlignedSegment], start: int, end: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """depth, deletions, insertions over [start, end) from the CIGARs."""
    n = end - start
    depth, dels, ins = (np.zeros(n, np.int64) for _ in range(3))
    for r in reads:
        p = r.reference_start
        last_ins = None
        for op, ln in r.cigartuples:
            if op in (M, EQ, X, D):
                a, b = max(p, start), min(p + ln, end)
                if a < b:
                    depth[a - start:b - start] += 1
                    if op == D:
                        dels[a - start:b - start] += 1
            if op == I and start <= p - 1 < end and last_ins != p - 1:
                ins[p - 1 - start] += 1
                last_ins = p - 1
            if op in (M, D, N, EQ, X):
                p += ln
    return depth, dels, ins


def aligned_pairs(cigar: list[tuple[int, int]], pos: int) -> Iterable[tuple[int, int]]:
    """(query, reference) offsets of M/=/X bases (pysam's get_aligned_pairs mishandles P)."""
    q = 0
    for op, ln in cigar:
        if op in (M, EQ, X):
            yield from zip(range(q, q + ln), range(pos, pos + ln), strict=True)
        if op in (M, I, S, EQ, X):
            q += ln
        if op in (M, D, N, EQ, X):
            pos += ln


def masked_base_counts(reads: list[pysam.AlignedSegment], start: int, end: int,
                       min_q: int = 13) -> np.ndarray:
    """ACGT counts with the second mate's bases inside its mate's span ignored."""
    counts = np.zeros((end - start, 4), np.int64)
    first: dict[str, pysam.AlignedSegment] = {}
    for r in reads:
        mate = first.get(r.query_name)
        span = None
        if mate is not None and mate.is_read1 != r.is_read1:
            span = (mate.reference_start, mate.reference_end)
        elif r.query_name not in first:
            first[r.query_name] = r
        quals = r.query_qualities
        seq = r.query_sequence
        for qp, rp in aligned_pairs(r.cigartuples, r.reference_start):
            if not start <= rp < end or quals[qp] < min_q or seq[qp] not in BASES:
                continue
            if span and span[0] <= rp < span[1]:
                continue
            counts[rp - start, BASES.index(seq[qp])] += 1
    return counts


def parse_mpileup(text: str, contig: str, start: int, end: int) -> dict[str, np.ndarray]:
    """Counts from samtools mpileup text (with -f): bases, deletions, insertions, depth."""
    n = end - start
    out = {"base": np.zeros((n, 5), np.int64), "del": np.zeros(n, np.int64),
           "ins": np.zeros(n, np.int64), "depth": np.zeros(n, np.int64)}
    for line in text.splitlines():
        f = line.split("\t")
        if f[0] != contig or not start <= int(f[1]) - 1 < end:
            continue
        i, ref, s, k = int(f[1]) - 1 - start, f[2].upper(), f[4], 0
        while k < len(s):
            c = s[k]
            if c == "^":
                k += 2
                continue
            if c in "+-":
                j = k + 1
                while s[j].isdigit():
                    j += 1
                if c == "+":
                    out["ins"][i] += 1
                k = j + int(s[k + 1:j])
                continue
            if c in ".,":
                out["base"][i, CODE.get(ref, 4)] += 1
                out["depth"][i] += 1
            elif c in "*#":
                out["del"][i] += 1
                out["depth"][i] += 1
            elif c.upper() in CODE:
                out["base"][i, CODE[c.upper()]] += 1
                out["depth"][i] += 1
            k += 1  # '$', '>' and '<' (reference skips) count for nothing
    return out


def mpileup(*args: str) -> str:
    return pysam.samtools.mpileup(*args, catch_stdout=True)


# ---------------------------------------------------------------------------------------------
# Random CIGARs with every operation


def random_alignment(rng: random.Random, ref: str, pos: int, pads: bool
                     ) -> tuple[list, str, list[int]]:
    cigar: list[tuple[int, int]] = []
    seq: list[str] = []

    def add(op: int, ln: int, bases: str = "") -> None:
        cigar.append((op, ln))
        seq.append(bases)

    def rand(k: int) -> str:
        return "".join(rng.choices(BASES, k=k))

    if rng.random() < 0.2:
        add(H, rng.randint(1, 20))
    if rng.random() < 0.3:
        add(S, k := rng.randint(1, 15), rand(k))
    p = pos
    nseg = rng.randint(1, 4)
    for s in range(nseg):
        op, ln = rng.choice([M, M, EQ, X]), rng.randint(5, 40)
        if op == EQ:
            bases = ref[p:p + ln]
        elif op == X:
            bases = "".join(rng.choice([b for b in BASES if b != ref[p + j]]) for j in range(ln))
        else:
            bases = "".join(b if rng.random() > 0.05 else rng.choice(BASES) for b in ref[p:p + ln])
        add(op, ln, bases)
        p += ln
        if s == nseg - 1:
            break
        ev = rng.choice(["I", "D", "N", "PI", "IPI"] if pads else ["I", "D", "N", "II"])
        if ev == "I":
            add(I, k := rng.randint(1, 6), rand(k))
        elif ev == "D":
            add(D, k := rng.randint(1, 6))
            p += k
        elif ev == "N":
            add(N, k := rng.randint(30, 300))
            p += k
        elif ev == "II":
            add(I, k := rng.randint(1, 3), rand(k))
            add(I, k := rng.randint(1, 3), rand(k))
        elif ev == "PI":
            add(P, rng.randint(1, 3))
            add(I, k := rng.randint(1, 4), rand(k))
        else:
            add(I, k := rng.randint(1, 3), rand(k))
            add(P, 1)
            add(I, k := rng.randint(1, 3), rand(k))
    if rng.random() < 0.3:
        add(S, k := rng.randint(1, 15), rand(k))
    if rng.random() < 0.2:
        add(H, rng.randint(1, 20))
    s = "".join(seq)
    return cigar, s, [rng.randint(2, 40) for _ in s]


@pytest.fixture(scope="module", params=[False, True], ids=["no_pads", "pads"])
def cigar_bam(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Path, Path, str]:
    """Unpaired reads with random CIGARs (M I D N S H = X, and P in the "pads" variant: pysam's
    count_coverage mishandles P), flags and MAPQs."""
    pads: bool = request.param
    d = tmp_path_factory.mktemp("cigars_pads" if pads else "cigars")
    (name, ref), = random_genome(5, {"c1": 6000})
    fasta = write_fasta(d / "ref.fa", [(name, ref)])
    pysam.faidx(str(fasta))
    rng = random.Random(7)
    reads = []
    for i in range(1500):
        pos = rng.randint(0, 4800)
        cigar, seq, qual = random_alignment(rng, ref, pos, pads)
        flag = rng.choice([0, 16, 0, 16, 0x400, 0x100, 0x200, 0x800 | 16])
        reads.append(dict(name=f"r{i}", contig=name, pos=pos, cigar=cigar, seq=seq, qual=qual,
                          flag=flag, mapq=rng.randint(0, 60)))
    # Placed unmapped reads have no CIGAR: filtered by flag (or, without it, for lack of span).
    reads.append(dict(name="u", contig=name, pos=300, cigar=None, seq="ACGT", qual=[30] * 4,
                      flag=4))
    return write_bam(d / "cigars.bam", [(name, len(ref))], reads), fasta, ref


# ---------------------------------------------------------------------------------------------
# Counts


def test_counts_match_pysam_count_coverage(cigar_bam) -> None:
    bam, _, ref = cigar_bam
    start, end = 0, len(ref)
    got = _core.pileup(bam, "c1", start, end)
    assert got["start"] == 0 and got["base_counts"].shape == (end, 5)
    if "pads" not in str(bam):
        with pysam.AlignmentFile(str(bam)) as f:
            cov = np.array(f.count_coverage("c1", start, end, quality_threshold=13,
                                            read_callback="all")).T
        np.testing.assert_array_equal(got["base_counts"][:, :4], cov)
    reads = passing(bam, "c1", start, end)
    np.testing.assert_array_equal(got["base_counts"][:, :4], masked_base_counts(reads, start, end))
    depth, dels, ins = expected_spans(passing(bam, "c1", start, end), start, end)
    np.testing.assert_array_equal(got["depth"], depth)
    np.testing.assert_array_equal(got["deletions"], dels)
    np.testing.assert_array_equal(got["insertions"], ins)
    assert got["loaded"] == len(passing(bam, "c1", start, end))
    # Quality sums: each counted base adds its quality, so the mean lies in [13, 40].
    counted = got["base_counts"].sum()
    assert 13 * counted <= got["base_qual_sums"].sum() <= 40 * counted


def test_counts_match_samtools_mpileup_on_random_cigars(cigar_bam) -> None:
    bam, fasta, ref = cigar_bam
    got = _core.pileup(bam, "c1", 0, len(ref), min_baseq=0)
    exp = parse_mpileup(mpileup("-B", "-Q0", "-x", "-A", "-d", "100000", "-f", str(fasta),
                                str(bam)), "c1", 0, len(ref))
    np.testing.assert_array_equal(got["depth"], exp["depth"])
    np.testing.assert_array_equal(got["deletions"], exp["del"])
    np.testing.assert_array_equal(got["base_counts"], exp["base"])


def test_subregion_and_min_mapq(cigar_bam) -> None:
    bam, _, ref = cigar_bam
    whole = _core.pileup(bam, "c1", 0, len(ref))
    part = _core.pileup(bam, "c1", 1234, 2345)
    for key in ("base_counts", "base_qual_sums", "deletions", "insertions", "depth"):
        np.testing.assert_array_equal(part[key], whole[key][1234:2345])
    q30 = _core.pileup(bam, "c1", 0, len(ref), min_mapq=30)
    reads = [r for r in passing(bam, "c1", 0, len(ref)) if r.mapping_quality >= 30]
    np.testing.assert_array_equal(q30["depth"], expected_spans(reads, 0, len(ref))[0])
    assert q30["filtered"] > whole["filtered"]
    # Without skip flags every record with a CIGAR counts.
    everything = _core.pileup(bam, "c1", 0, len(ref), skip_flags=0)
    assert everything["loaded"] == 1500 and everything["filtered"] == 1


@pytest.mark.parametrize("name", ["mp_N", "mp_P", "mp_D", "mp_DI", "mp_I", "mp_ID"])
def test_samtools_corner_cases(name: str, tmp_path: Path) -> None:
    """The compound I/D/N/P cases of samtools' own mpileup tests."""
    sam = MPILEUP_DIR / f"{name}.sam"
    if not sam.exists():
        pytest.skip("samtools-test is not installed")
    bam = tmp_path / f"{name}.bam"
    pysam.sort("-o", str(bam), str(sam))
    pysam.index(str(bam))
    fasta = tmp_path / "mp.fa"
    shutil.copy(MPILEUP_DIR / "mp.fa", fasta)
    got = _core.pileup(bam, "z", 0, 13, min_baseq=0)
    exp = parse_mpileup(mpileup("-ABQ0", "-x", "-f", str(fasta), str(bam)), "z", 0, 13)
    # samtools does not report an insertion that opens an alignment (see mp_I.sam); we do.
    for r in passing(bam, "z", 0, 13):
        ops = [op for op, _ in r.cigartuples if op not in (S, H, P)]
        if ops[0] == I:
            exp["ins"][r.reference_start - 1] += 1
    np.testing.assert_array_equal(got["depth"], exp["depth"])
    np.testing.assert_array_equal(got["deletions"], exp["del"])
    np.testing.assert_array_equal(got["insertions"], exp["ins"])
    np.testing.assert_array_equal(got["base_counts"], exp["base"])


def test_samtools_mpileup_real_reads() -> None:
    """1000 Genomes reads (samtools-test mpileup.1.bam), pairs with overlapping mates included."""
    bam, fasta = MPILEUP_DIR / "mpileup.1.bam", MPILEUP_DIR / "mpileup.ref.fa"
    if not bam.exists():
        pytest.skip("samtools-test is not installed")
    src = _core.AlignmentSource(bam)
    assert src.sample == "HG00100" and src.contig_id("17") == 16 and src.contig_id("nope") == -1
    start, end = 0, 4200
    got = src.pileup("17", start, end, min_baseq=13)
    args = ["-B", "-x", "-A", "-f", str(fasta), "-r", "17:1-4200", str(bam)]
    exp0 = parse_mpileup(mpileup("-Q0", *args), "17", start, end)
    exp13 = parse_mpileup(mpileup("-Q13", *args), "17", start, end)
    assert got["depth"].sum() > 10_000
    np.testing.assert_array_equal(got["depth"], exp0["depth"])
    np.testing.assert_array_equal(got["deletions"], exp0["del"])
    np.testing.assert_array_equal(got["insertions"], exp0["ins"])
    # Outside overlapping mates the counts agree; inside, the second mate's bases are masked.
    overlap = np.zeros(end - start, bool)
    reads = passing(bam, "17", start, end)
    for r in reads:
        if r.is_paired and r.next_reference_id == r.reference_id and \
                r.reference_start <= r.next_reference_start < r.reference_end:
            overlap[r.next_reference_start:r.reference_end] = True
    assert overlap.any()
    np.testing.assert_array_equal(got["base_counts"][~overlap], exp13["base"][~overlap])
    assert (got["base_counts"][overlap].sum(1) <= exp13["base"][overlap].sum(1)).all()
    np.testing.assert_array_equal(got["base_counts"][:, :4],
                                  masked_base_counts(reads, start, end))


def test_aligned_pairs_with_mate_masking(dataset: Dataset, index_path: Path,
                                         tmp_path: Path) -> None:
    bam = tmp_path / "aln.bam"
    Aligner(str(index_path)).align_fastq(dataset.r1, dataset.r2, bam)
    for contig, seq in dataset.contigs:
        got = _core.pileup(bam, contig, 0, len(seq), threads=2)
        reads = passing(bam, contig, 0, len(seq))
        np.testing.assert_array_equal(got["depth"], expected_spans(reads, 0, len(seq))[0])
        np.testing.assert_array_equal(got["base_counts"][:, :4],
                                      masked_base_counts(reads, 0, len(seq)))


def test_mate_overlap_masked_once(tmp_path: Path) -> None:
    (name, ref), = random_genome(9, {"m": 1000})
    r1 = ref[100:250]
    r2 = ref[200:350]
    reads = [
        dict(name="p", contig=name, pos=100, cigar=[(M, 150)], seq=r1, qual=[30] * 150,
             flag=0x1 | 0x2 | 0x20 | 0x40, mate=(name, 200)),
        dict(name="p", contig=name, pos=200, cigar=[(M, 150)], seq=r2, qual=[30] * 150,
             flag=0x1 | 0x2 | 0x10 | 0x80, mate=(name, 100)),
    ]
    bam = write_bam(tmp_path / "pair.bam", [(name, len(ref))], reads)
    got = _core.pileup(bam, name, 0, len(ref))
    depth, counted = got["depth"], got["base_counts"].sum(1)
    assert (depth[100:200] == 1).all() and (counted[100:200] == 1).all()
    assert (depth[200:250] == 2).all() and (counted[200:250] == 1).all()  # 50 shared bases
    assert (depth[250:350] == 1).all() and (counted[250:350] == 1).all()
    assert got["base_qual_sums"][200:250].sum() == 50 * 30
    # A read of the same name and the same mate number (not its mate) is not masked.
    reads[1]["flag"] = 0x1 | 0x2 | 0x10 | 0x40
    bam = write_bam(tmp_path / "same.bam", [(name, len(ref))], reads)
    assert (_core.pileup(bam, name, 0, len(ref))["base_counts"].sum(1)[200:250] == 2).all()


def test_overlapping_mates_support_an_indel_once(tmp_path: Path) -> None:
    (name, ref), = random_genome(12, {"m": 1000})
    flags = (0x1 | 0x2 | 0x20 | 0x40, 0x1 | 0x2 | 0x10 | 0x80)
    reads = []
    for k, (pos, mate) in enumerate(((100, 150), (150, 100))):
        # Both mates carry the same 2-base deletion at 220 (inside the 100-base overlap).
        seq = ref[pos:220] + ref[222:pos + 152]
        reads.append(dict(name="p", contig=name, pos=pos, cigar=[(M, 220 - pos), (D, 2),
                                                                  (M, pos + 150 - 220)],
                          seq=seq, qual=[30] * 150, flag=flags[k], mate=(name, mate)))
    bam = write_bam(tmp_path / "pairdel.bam", [(name, len(ref))], reads)
    cands = _core.candidates(bam, _core.encode(ref), name, 0, len(ref), min_support=1)
    dels = [c for c in cands if len(c[1]) > len(c[2])]
    assert len(dels) == 1 and dels[0][3] == 1 and dels[0][4] == 2
    # Unpaired, the same two records are two reads.
    for r in reads:
        r["flag"] &= 0x10
    bam = write_bam(tmp_path / "twodel.bam", [(name, len(ref))], reads)
    cands = _core.candidates(bam, _core.encode(ref), name, 0, len(ref), min_support=1)
    assert [c[3] for c in cands if len(c[1]) > len(c[2])] == [2]


def test_missing_qualities_count_as_30(tmp_path: Path) -> None:
    (name, ref), = random_genome(2, {"q": 500})
    reads = [dict(name="nq", contig=name, pos=10, cigar=[(M, 50)], seq=ref[10:60], qual=None),
             dict(name="lq", contig=name, pos=10, cigar=[(M, 50)], seq=ref[10:60],
                  qual=[12] * 25 + [13] * 25)]
    bam = write_bam(tmp_path / "nq.bam", [(name, len(ref))], reads)
    got = _core.pileup(bam, name, 0, len(ref))
    assert (got["depth"][10:60] == 2).all()
    np.testing.assert_array_equal(got["base_counts"].sum(1)[10:60], [1] * 25 + [2] * 25)
    np.testing.assert_array_equal(got["base_qual_sums"].sum(1)[10:60], [30] * 25 + [43] * 25)


# ---------------------------------------------------------------------------------------------
# Candidates


def bcftools_norm(fasta: Path, contig: str, variants: list[tuple[int, str, str]],
                  tmp: Path) -> list[tuple[int, str, str]]:
    vcf = tmp / "raw.vcf"
    with open(vcf, "w") as fh:
        fh.write(f"##fileformat=VCFv4.2\n##contig=<ID={contig}>\n"
                 "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        for pos, ref, alt in variants:
            fh.write(f"{contig}\t{pos + 1}\t.\t{ref}\t{alt}\t.\t.\t.\n")
    out = pysam.bcftools.norm("-f", str(fasta), str(vcf))  # htslib's bcftools, bundled by pysam
    return sorted((int(f[1]) - 1, f[3], f[4]) for f in
                  (ln.split("\t") for ln in out.splitlines() if not ln.startswith("#")))


@pytest.fixture(scope="module")
def repeat_genome(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    d = tmp_path_factory.mktemp("repeats")
    rng = random.Random(21)
    left = "".join(rng.choices(BASES, k=300))
    right = "".join(rng.choices(BASES, k=300))
    mid = "".join(rng.choices(BASES, k=100))
    # A homopolymer at 300 (GAAAAAAT) and a dinucleotide repeat at 500 (T + CA x6 + G).
    ref = left[:-1] + "G" + "AAAAAA" + "T" + mid[:-1] + "T" + "CA" * 6 + "G" + right
    # Keep the flanks of the repeats unambiguous.
    assert ref[299] == "G" and ref[306] == "T" and ref[307 + 99] == "T"
    fasta = write_fasta(d / "rep.fa", [("r", ref)])
    pysam.faidx(str(fasta))
    return fasta, ref


def _cigar_for(ref: str, start: int, length: int, event: tuple[str, int, str]
               ) -> tuple[list[tuple[int, int]], str]:
    """Read over ref[start:start+length] with one event at reference offset pos:
    ('D', pos, deleted) or ('I', pos, inserted after ref[pos-1]) or ('X', pos, base)."""
    kind, pos, what = event
    if kind == "X":
        seq = ref[start:pos] + what + ref[pos + 1:start + length]
        return [(M, length)], seq
    if kind == "D":
        seq = ref[start:pos] + ref[pos + len(what):start + length]
        assert ref[pos:pos + len(what)] == what
        return [(M, pos - start), (D, len(what)), (M, start + length - pos - len(what))], seq
    seq = ref[start:pos] + what + ref[pos:start + length]
    return [(M, pos - start), (I, len(what)), (M, start + length - pos)], seq


def test_candidates_left_normalised_like_bcftools(repeat_genome, tmp_path: Path) -> None:
    fasta, ref = repeat_genome
    hp, dn = 300, 407  # first A of the homopolymer, first C of the CA repeat
    events = [
        ("X", 200, "A" if ref[200] != "A" else "C"),  # SNV
        ("D", hp + 5, "A"),            # one A deleted, written at the right end of the run
        ("D", hp + 2, "A"),            # ... and in its middle: both mean the same allele
        ("I", dn + 12, "CA"),          # one CA inserted after the repeat
        ("I", dn + 4, "CA"),           # ... and inside it
        ("D", dn + 8, "CA"),           # two bases deleted inside the repeat
        ("D", dn + 2, "CA"),
        ("I", 650, "GGT"),             # a plain insertion
    ]
    rng = random.Random(3)
    reads = []
    for i in range(40):  # 40 reference reads spanning everything
        s = rng.randint(0, 15)
        reads.append(dict(name=f"ref{i}", contig="r", pos=s, cigar=[(M, 700)],
                          seq=ref[s:s + 700], qual=[30] * 700))
    for k, ev in enumerate(events):
        for j in range(4):
            s = rng.randint(0, 15)
            cigar, seq = _cigar_for(ref, s, 700, ev)
            reads.append(dict(name=f"ev{k}_{j}", contig="r", pos=s, cigar=cigar, seq=seq,
                              qual=[30] * len(seq)))
    bam = write_bam(tmp_path / "ev.bam", [("r", len(ref))], reads)
    codes = _core.encode(ref)
    cands = _core.candidates(bam, codes, "r", 0, len(ref), min_support=2, min_fraction=0.02)
    found = {(p, r, a): (sup, dp) for p, r, a, sup, dp in cands}
    # What bcftools norm makes of each event written at its CIGAR position.
    raw = []
    for kind, pos, what in events:
        if kind == "X":
            raw.append((pos, ref[pos], what))
        elif kind == "D":
            raw.append((pos - 1, ref[pos - 1] + what, ref[pos - 1]))
        else:
            raw.append((pos - 1, ref[pos - 1], ref[pos - 1] + what))
    expected = sorted(set(bcftools_norm(fasta, "r", raw, tmp_path)))
    assert sorted(found) == expected, (found, expected)
    assert found[(hp - 1, "GA", "G")][0] == 8  # two spellings, one allele
    assert found[(dn - 1, "TCA", "T")][0] == 8
    assert found[(dn - 1, "T", "TCA")][0] == 8
    assert sorted(sup for sup, _ in found.values()) == [4, 4, 8, 8, 8]
    snv = (200, ref[200], events[0][2])
    assert found[snv] == (4, 40 + 8 * 4)  # every read spans the SNV
    assert cands == sorted(cands)
    # The indels lie inside the window [start, end) only by their normalised anchor.
    inner = _core.candidates(bam, codes, "r", hp, dn, min_support=2, min_fraction=0.02)
    assert [(p, r, a) for p, r, a, *_ in inner] == [(p, r, a) for p, r, a in expected
                                                      if hp <= p < dn]


def test_candidate_thresholds(repeat_genome, tmp_path: Path) -> None:
    fasta, ref = repeat_genome
    reads = []
    for i in range(97):
        reads.append(dict(name=f"ref{i}", contig="r", pos=0, cigar=[(M, 600)], seq=ref[:600],
                          qual=[30] * 600))

    def alt(p: int) -> str:
        return "C" if ref[p] != "C" else "G"

    def mutant(name: str, p: int, q: int) -> Read:
        seq = ref[:p] + alt(p) + ref[p + 1:600]
        return dict(name=name, contig="r", pos=0, cigar=[(M, 600)], seq=seq,
                    qual=[30] * p + [q] + [30] * (599 - p))

    reads += [mutant("single", 100, 30)]  # one read
    reads += [mutant(f"three{i}", 150, 30) for i in range(3)]  # 3 of 100 reads
    reads += [mutant(f"weak{i}", 250, 15) for i in range(2)]  # quality sum 30
    bam = write_bam(tmp_path / "thr.bam", [("r", len(ref))], reads)
    codes = _core.encode(ref)

    def called(**kw: float) -> set[int]:
        return {p for p, *_ in _core.candidates(bam, codes, "r", 0, len(ref), **kw)}

    assert called() == set()  # 3/100 < 0.05; single below support; weak below quality sum
    assert called(min_fraction=0.02) == {150}
    assert called(min_fraction=0.0, min_support=1, min_qual_sum=30) == {100, 150, 250}
    assert called(min_fraction=0.0, min_support=1) == {150}
    assert called(min_fraction=0.0, min_qual_sum=30) == {150, 250}
    with pytest.raises(ValueError, match="same reference"):
        _core.candidates(bam, codes[:-1], "r", 0, 100)


def test_indel_next_to_soft_clip_and_window_edges(repeat_genome, tmp_path: Path) -> None:
    _, ref = repeat_genome
    reads = []
    for i in range(3):
        # 10S 2I 60M: the insertion opens the alignment; 20M 3D 20M 5S
        reads.append(dict(name=f"a{i}", contig="r", pos=400,
                          cigar=[(S, 10), (I, 2), (M, 60)],
                          seq="ACGTACGTAC" + "TT" + ref[400:460], qual=[30] * 72))
        reads.append(dict(name=f"b{i}", contig="r", pos=620,
                          cigar=[(M, 20), (D, 3), (M, 20), (S, 5)],
                          seq=ref[620:640] + ref[643:663] + "GGGGG", qual=[30] * 45))
    bam = write_bam(tmp_path / "clip.bam", [("r", len(ref))], reads)
    codes = _core.encode(ref)
    cands = {(p, r, a) for p, r, a, *_ in _core.candidates(bam, codes, "r", 0, len(ref))}
    assert any(p <= 399 and len(a) > len(r) for p, r, a in cands)
    assert any(len(r) == 4 and 600 <= p <= 639 for p, r, a in cands)
    assert _core.candidates(bam, codes, "r", 700, 800) == []


def test_candidates_across_count_windows(tmp_path: Path) -> None:
    """Counts are piled up 65,536 positions at a time: events on either side of those edges, and
    indels that normalise across one, come out as from any other split of the region."""
    (name, ref), = random_genome(9, {"w": 140_000})
    edges = (65_536, 131_072)
    # A homopolymer straddling each window edge, so that deletions in it normalise across it.
    for e in edges:
        ref = ref[:e - 4] + "C" + "A" * 8 + "G" + ref[e + 6:]
    events = []
    for e in edges:
        events += [("X", e - 1, "T" if ref[e - 1] != "T" else "G"),
                   ("X", e, "T" if ref[e] != "T" else "G"),
                   ("D", e + 3, "A"),           # in the run: normalises to its left end
                   ("I", e + 40, "GGT"), ("D", e - 30, ref[e - 30:e - 27])]
    reads = []
    rng = random.Random(13)
    for i in range(1200):
        s = rng.randint(0, len(ref) - 200)
        reads.append(dict(name=f"ref{i}", contig=name, pos=s, cigar=[(M, 150)],
                          seq=ref[s:s + 150], qual=[30] * 150))
    for k, (kind, pos, what) in enumerate(events):
        for j in range(6):
            s = pos - rng.randint(20, 120)
            cigar, seq = _cigar_for(ref, s, 150, (kind, pos, what))
            reads.append(dict(name=f"ev{k}_{j}", contig=name, pos=s, cigar=cigar, seq=seq,
                              qual=[30] * len(seq)))
    bam = write_bam(tmp_path / "win.bam", [(name, len(ref))], reads)
    codes = _core.encode(ref)
    whole = _core.candidates(bam, codes, name, 0, len(ref), min_support=2, min_fraction=0.02)
    pieces = []
    for a, b in ((0, 40_000), (40_000, 65_530), (65_530, 100_003), (100_003, len(ref))):
        pieces += _core.candidates(bam, codes, name, a, b, min_support=2, min_fraction=0.02)
    assert whole == pieces
    found = {(p, r, a): sup for p, r, a, sup, _ in whole}
    for e in edges:
        assert found[(e - 1, ref[e - 1], events[0][2] if e == edges[0] else events[5][2])] == 6
        assert found[(e - 4, "CA", "C")] == 6  # the deletion, anchored before the run
    assert sum(1 for _ in found) == len(events)


# ---------------------------------------------------------------------------------------------
# Files and bad input


def _simple_reads(contig: str, ref: str, n: int, step: int = 7) -> list[Read]:
    return [dict(name=f"s{i}", contig=contig, pos=(i * step) % (len(ref) - 100), cigar=[(M, 100)],
                 seq=ref[(i * step) % (len(ref) - 100):][:100], qual=[30] * 100)
            for i in range(n)]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    d = tmp_path_factory.mktemp("small")
    (name, ref), = random_genome(4, {"s": 2000})
    fasta = write_fasta(d / "s.fa", [(name, ref)])
    pysam.faidx(str(fasta))
    bam = write_bam(d / "s.bam", [(name, len(ref))], _simple_reads(name, ref, 300))
    return bam, fasta, ref


def test_source_properties(small) -> None:
    bam, _, ref = small
    src = _core.AlignmentSource(bam, threads=2)
    assert src.contigs == [("s", len(ref))] and src.sample == "sampleX"
    assert src.path == str(bam)


def test_cram_needs_reference_and_matches_bam(small, tmp_path: Path) -> None:
    bam, fasta, ref = small
    cram = tmp_path / "s.cram"
    pysam.view("-C", "-T", str(fasta), "-o", str(cram), str(bam), catch_stdout=False)
    pysam.index(str(cram))
    with pytest.raises(_core.InputError, match=r"CRAM .*s\.cram needs the reference \(-f\)"):
        _core.AlignmentSource(cram)
    a = _core.pileup(bam, "s", 0, len(ref))
    b = _core.pileup(cram, "s", 0, len(ref), reference=str(fasta))
    for key in ("base_counts", "depth", "base_qual_sums"):
        np.testing.assert_array_equal(a[key], b[key])


def test_bad_files(small, tmp_path: Path) -> None:
    bam, _, ref = small
    with pytest.raises(_core.InputError, match="cannot open .*missing.bam"):
        _core.AlignmentSource(tmp_path / "missing.bam")
    assert issubclass(_core.InputError, ValueError)
    no_index = tmp_path / "noidx.bam"
    shutil.copy(bam, no_index)
    with pytest.raises(_core.InputError, match=r"noidx.bam has no index: run 'samtools index"):
        _core.AlignmentSource(no_index)
    for so in ("unsorted", "queryname"):
        path = write_bam(tmp_path / f"{so}.bam", [("s", len(ref))],
                         _simple_reads("s", ref, 10), sort=False, index=False, so=so)
        with pytest.raises(_core.InputError, match="not coordinate-sorted.*samtools sort"):
            _core.AlignmentSource(path)
    text = tmp_path / "text.bam"
    text.write_text("hello\n")
    with pytest.raises(_core.InputError):
        _core.AlignmentSource(text)
    with pytest.raises(_core.InputError, match="contig 'zz' is not in"):
        _core.pileup(bam, "zz", 0, 10)


def test_out_of_order_records(tmp_path: Path) -> None:
    """A file whose records go backwards behind a borrowed index: named, not miscounted."""
    (name, ref), = random_genome(6, {"o": 1000})

    def two(first: int, second: int) -> list[Read]:
        return [dict(name=f"x{p}", contig=name, pos=p, cigar=[(M, 50)], seq=ref[p:p + 50],
                     qual=[30] * 50) for p in (first, second)]

    good = write_bam(tmp_path / "good.bam", [(name, len(ref))], two(100, 200), sort=False)
    bad = write_bam(tmp_path / "bad.bam", [(name, len(ref))], two(200, 100), sort=False,
                    index=False)
    shutil.copy(str(good) + ".bai", str(bad) + ".bai")
    # Same header and record sizes, so the borrowed index points at the same records.
    with pytest.raises(_core.InputError, match=r"bad\.bam: read x100 .*sort"):
        _core.pileup(bad, name, 0, len(ref))


def test_region_beyond_contig(small) -> None:
    bam, _, ref = small
    got = _core.pileup(bam, "s", len(ref) - 10, len(ref) + 500)
    assert got["start"] == len(ref) - 10 and got["depth"].shape == (10,)
    empty = _core.pileup(bam, "s", len(ref) + 5, len(ref) + 500)
    assert empty["depth"].shape == (0,) and empty["base_counts"].shape == (0, 5)
    neg = _core.pileup(bam, "s", -50, 10)
    assert neg["start"] == 0 and neg["depth"].shape == (10,)
    assert _core.candidates(bam, _core.encode(ref), "s", len(ref) + 1, len(ref) + 9) == []


def test_deep_pile_is_capped(tmp_path: Path) -> None:
    (name, ref), = random_genome(8, {"d": 3000})
    seq = ref[1000:1100]
    reads = (dict(name=f"d{i}", contig=name, pos=1000, cigar=[(M, 100)], seq=seq,
                  qual=[30] * 100) for i in range(10_000))
    bam = write_bam(tmp_path / "deep.bam", [(name, len(ref))], reads, sort=False)
    t = time.perf_counter()
    got = _core.pileup(bam, name, 0, len(ref))
    assert time.perf_counter() - t < 2.0
    assert got["loaded"] == 1000 and got["depth_capped"] == 9000
    assert got["depth"].max() == 1000
    unlimited = _core.pileup(bam, name, 0, len(ref), max_depth=0)
    assert unlimited["loaded"] == 10_000 and unlimited["depth"].max() == 10_000


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), n_reads=st.integers(0, 60),
       clusters=st.integers(1, 6))
def test_covered_stretches_give_what_whole_windows_give(tmp_path: Path, seed: int,
                                                        n_reads: int, clusters: int) -> None:
    """Sparse reads (low coverage, off-target reads of a panel): counts are piled up only over
    the stretches reads cover. Candidates, their support and depth are those of whole windows,
    across window edges, with homopolymer deletions left-aligned out of the reads that carry
    them (depth from support alone) and insertions after soft clips."""
    rng = random.Random(seed)
    (name, ref), = random_genome(seed % 97 + 1, {"p": 150_000})
    ref = list(ref)
    for e in (65_536, 131_072, 1_000):  # homopolymers at window edges and near the start
        ref[e - 6:e + 4] = "C" + "A" * 8 + "G"
    ref = "".join(ref)
    reads, events = [], 0
    for c in range(clusters):
        centre = rng.choice([rng.randint(200, len(ref) - 400), 65_536, 131_072, 1_000])
        for i in range(n_reads):
            s = max(0, min(len(ref) - 160, centre + rng.randint(-300, 300)))
            kind = rng.randint(0, 4)
            if kind == 0:  # an SNV
                pos = s + rng.randint(5, 140)
                cigar, seq = _cigar_for(ref, s, 150, ("X", pos, "T" if ref[pos] != "T" else "G"))
            elif kind == 1 and ref[s + 2:s + 4] == "AA":  # a deletion the run left-aligns away
                cigar, seq = _cigar_for(ref, s, 150, ("D", s + 3, "A"))
            elif kind == 2 and s > 0:  # an insertion right after a soft clip: anchored at s - 1
                seq = "GT" + "CCA" + ref[s:s + 140]
                cigar = [(S, 2), (I, 3), (M, 140)]
            else:
                kind, cigar, seq = 3, [(M, 150)], ref[s:s + 150]
            events += kind < 3
            reads.append(dict(name=f"r{c}_{i}", contig=name, pos=s, cigar=cigar, seq=seq,
                              qual=[30] * len(seq)))
    reads.sort(key=lambda r: r["pos"])
    bam = write_bam(tmp_path / f"sparse{seed}.bam", [(name, len(ref))], reads)
    codes = _core.encode(ref)
    counted = 0
    for a, b in ((0, len(ref)), (900, 66_000), (65_540, 131_100)):
        stretches = _core.candidates(bam, codes, name, a, b, min_support=1, min_fraction=0.0,
                                     min_qual_sum=0)
        whole = _core.candidates(bam, codes, name, a, b, min_support=1, min_fraction=0.0,
                                 min_qual_sum=0, whole_windows=True)
        assert stretches == whole
        counted += len(whole)
    assert counted or not events


def test_unmapped_flagged_reads_kept_by_the_flags_pile_up_their_whole_cigar(
        tmp_path: Path) -> None:
    """A read flagged unmapped (0x4) but with a CIGAR, kept with skip_flags=0: htslib gives it a
    one-base span, yet it piles up along its CIGAR; its stretch must cover all of it."""
    (name, ref), = random_genome(21, {"u": 1000})
    seq = ref[100:150]
    seq = seq[:20] + ("A" if seq[20] != "A" else "C") + seq[21:]
    reads = [dict(name=f"u{i}", contig=name, pos=100, cigar=[(M, 50)], seq=seq, qual=[40] * 50,
                  flag=4) for i in range(2)]
    bam = write_bam(tmp_path / "u.bam", [(name, len(ref))], reads)
    codes = _core.encode(ref)
    want = [(120, ref[120], seq[20], 2, 2)]
    for whole in (True, False):
        assert _core.candidates(bam, codes, name, 0, len(ref), skip_flags=0,
                                whole_windows=whole) == want
    assert _core.candidates(bam, codes, name, 0, len(ref)) == []  # unmapped: skipped by default
