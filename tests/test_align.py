"""Aligner: known placements and edits, edge cases, and output checked against independent
recomputation from the reference (positions, CIGAR, NM, MD, mate fields)."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pysam
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gmsaccel import _core
from gmsaccel.align import Aligner, Index
from gmsaccel.evaluate import mapping_accuracy
from gmsaccel.simulate import apply_variants, plant_variants, simulate_pairs, write_fastq

COMP = str.maketrans("ACGTN", "TGCAN")


def revcomp(s: str) -> str:
    return s.translate(COMP)[::-1]


def random_seq(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("ACGT") for _ in range(n))


@pytest.fixture(scope="module")
def genome(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    rng = random.Random(11)
    chrom = random_seq(rng, 60_000)
    repeat = random_seq(rng, 1_500)
    # an exact 1.5 kb repeat at two places on chr1
    chrom = chrom[:10_000] + repeat + chrom[11_500:40_000] + repeat + chrom[41_500:]
    contigs = {"chr1": chrom, "plasmid_1": random_seq(rng, 8_000)}
    path = tmp_path_factory.mktemp("genome") / "ref.fa"
    path.write_text("".join(f">{n}\n{s}\n" for n, s in contigs.items()))
    return path, contigs


@pytest.fixture(scope="module")
def aligner(genome: tuple[Path, dict[str, str]]) -> Aligner:
    return Aligner(Index.build(genome[0]))


def test_exact_reads_both_strands(aligner: Aligner, genome) -> None:
    _, contigs = genome
    seq = contigs["chr1"][20_000:20_150]
    for read, strand in ((seq, 1), (revcomp(seq), -1)):
        hits = aligner.map(read)
        assert hits, "exact read must map"
        h = hits[0]
        assert (h.ctg, h.r_st, h.r_en, h.strand) == ("chr1", 20_000, 20_150, strand)
        assert (h.cigar, h.NM, h.MD, h.mapq, h.q_st, h.q_en) == ("150M", 0, "150", 60, 0, 150)
        assert h.score == 150 and h.is_primary


def test_mismatches_report_nm_and_md(aligner: Aligner, genome) -> None:
    ref = genome[1]["chr1"][30_000:30_150]
    read = list(ref)
    for p in (20, 75, 130):
        read[p] = {"A": "C", "C": "G", "G": "T", "T": "A"}[read[p]]
    h = aligner.map("".join(read))[0]
    assert (h.r_st, h.cigar, h.NM) == (30_000, "150M", 3)
    assert h.MD == f"20{ref[20]}54{ref[75]}54{ref[130]}19"


def _left_shift(seq: str, start: int, length: int) -> int:
    """Leftmost start of an equivalent deletion of seq[start:start+length]."""
    while start > 0 and seq[start - 1] == seq[start - 1 + length]:
        start -= 1
    return start


def test_deletion_and_insertion_cigars(aligner: Aligner, genome) -> None:
    chrom = genome[1]["chr1"]
    for at in range(5_040, 5_100, 7):  # 3 bases deleted at several offsets
        deleted = chrom[5_000:at] + chrom[at + 3:5_153]
        h = aligner.map(deleted)[0]
        left = _left_shift(chrom, at, 3) - 5_000  # gaps come back left-aligned
        assert (h.r_st, h.r_en, h.NM) == (5_000, 5_153, 3)
        assert h.cigar == f"{left}M3D{150 - left}M"
        assert h.MD == f"{left}^{chrom[5_000 + left:5_003 + left]}{150 - left}"
    inserted = chrom[7_000:7_060] + "GA" + chrom[7_060:7_148]
    h = aligner.map(revcomp(inserted))[0]
    assert (h.r_st, h.r_en, h.strand, h.NM) == (7_000, 7_148, -1, 2)
    ins_at = _left_shift(inserted, 60, 2)
    assert h.cigar == f"{ins_at}M2I{148 - ins_at}M"


def test_read_past_contig_end_is_clipped(aligner: Aligner, genome) -> None:
    plasmid = genome[1]["plasmid_1"]
    read = plasmid[-100:] + random_seq(random.Random(3), 50)
    h = aligner.map(read)[0]
    assert (h.ctg, h.r_st, h.r_en, h.q_st, h.q_en) == ("plasmid_1", 7_900, 8_000, 0, 100)
    assert h.cigar == "100M50S"


def test_short_and_all_n_reads_are_unmapped(aligner: Aligner, genome) -> None:
    assert aligner.map(genome[1]["chr1"][100:115]) == []  # shorter than k
    assert aligner.map("N" * 150) == []
    assert aligner.map("") == []


def test_repeat_gets_mapq_zero_and_sub_score(aligner: Aligner, genome) -> None:
    chrom = genome[1]["chr1"]
    hits = aligner.map(chrom[10_500:10_650])
    assert hits[0].mapq == 0
    assert hits[0].sub_score == hits[0].score == 150
    assert sorted(h.r_st for h in hits[:2]) == [10_500, 40_500]


def _other_base(base: str, by: int = 1) -> str:
    return "ACGT"[("ACGT".index(base) + by) % 4]


def _align_with_background(tmp_path: Path, chrom: str, special: list[tuple[str, str, str]],
                           max_occ: int, seed: int) -> list[pysam.AlignedSegment]:
    """Aligns 4,000 pairs simulated from chr1 = chrom (for the insert-size model) and then the
    pairs (name, R1, R2) of special, with the index's max_occ; returns the primary records of
    special's pairs."""
    fasta = tmp_path / "chr1.fa"
    fasta.write_text(f">chr1\n{chrom}\n")
    r1, r2 = simulate_pairs(apply_variants([("chr1", chrom)], [], 1), 4_000, seed=seed)
    names = {name for name, _, _ in special}
    for name, m1, m2 in special:
        r1.append((name, m1, "I" * len(m1)))
        r2.append((name, m2, "I" * len(m2)))
    out = tmp_path / "pairs.bam"
    Aligner(Index.build(fasta, max_occ=max_occ)).align_fastq(
        write_fastq(tmp_path / "1.fq.gz", r1), write_fastq(tmp_path / "2.fq.gz", r2), out)
    with pysam.AlignmentFile(str(out)) as f:
        return [r for r in f if r.query_name in names and not r.is_secondary
                and not r.is_supplementary]


def _marked_copies(tmp_path: Path, seed: int) -> tuple[Path, str, list[int]]:
    """chr1 with eight copies of one 150-base unit, each copy with one base changed at a
    position of its own (its marker)."""
    rng = random.Random(seed)
    unit = random_seq(rng, 150)
    chrom, starts = random_seq(rng, 2_000), []
    for i in range(8):
        at = 20 + 15 * i
        copy = unit[:at] + _other_base(unit[at]) + unit[at + 1:]
        starts.append(len(chrom))
        chrom += copy + random_seq(rng, 2_000)
    path = tmp_path / "copies.fa"
    path.write_text(f">chr1\n{chrom}\n")
    return path, chrom, starts


def test_thinly_seeded_placement_is_not_confident(tmp_path: Path) -> None:
    # With the unit's minimizers too frequent to index (8 copies, max_occ 4), a read of one copy
    # is seeded only by the k-mers over its marker: it lands on the right copy, but the other
    # copies were never seen, so its placement cannot be called unique. Indexed in full, the
    # other copies are seen, each a marker worse, and the MAPQ is earned.
    fasta, chrom, starts = _marked_copies(tmp_path, 5)
    read = chrom[starts[3]:starts[3] + 150]
    for max_occ, confident in ((4, False), (500, True)):
        hits = Aligner(Index.build(fasta, max_occ=max_occ)).map(read)
        assert hits and hits[0].r_st == starts[3] and hits[0].score == 150
        assert (hits[0].mapq >= 30) == confident, (max_occ, hits[0])


def test_rescue_weighs_every_tandem_copy_in_its_window(tmp_path: Path) -> None:
    # Three identical 220-base copies in tandem, too frequent to index: reads inside them have
    # no seeds and are placed by mate rescue from unique sequence. A rescue window holds more
    # than one copy; pairing must weigh them all (by insert size) rather than take the first
    # copy the window's alignment reaches, and never be confident on a wrong copy.
    rng = random.Random(8)
    unit = random_seq(rng, 220)
    chrom = random_seq(rng, 20_000) + unit * 3 + random_seq(rng, 20_000)
    fasta = tmp_path / "tandem.fa"
    fasta.write_text(f">chr1\n{chrom}\n")
    index = Index.build(fasta, max_occ=2)
    genome = (fasta, {"chr1": chrom})
    r1, r2 = _simulate(genome, tmp_path, 6_000, seed=31)
    out = tmp_path / "tandem.bam"
    Aligner(index).align_fastq(r1, r2, out)
    inside = confident = 0
    with pysam.AlignmentFile(str(out)) as f:
        for r in f:
            if r.is_unmapped or r.is_secondary or r.is_supplementary:
                continue
            fields = r.query_name.split("_")
            true = int(fields[2] if r.is_read2 else fields[1]) - 1
            if not 20_000 <= true <= 20_660 - 150:
                continue
            inside += 1
            if r.mapping_quality >= 20:
                confident += 1
                assert r.reference_start == true, r.to_string()
    assert inside > 20 and confident > inside // 2


def test_divergent_unique_read_is_confident(aligner: Aligner, genome) -> None:
    # A read from a sample far from the reference (a base in twelve differs) keeps only the
    # seeds of its one clean stretch: thin, but not because its minimizers were too frequent to
    # index, so nothing was left unseen and its unique placement is confident (it had MAPQ 0,
    # 2,000 of 200,000 reads of a 3%-divergent K. pneumoniae sample that bwa places at 60).
    chrom = genome[1]["chr1"]
    swap = {"A": "C", "C": "G", "G": "T", "T": "A"}
    for at in range(12_000, 20_000, 1_000):
        read = list(chrom[at:at + 150])
        for p in [*range(5, 50, 12), *range(95, 150, 12)]:  # [50, 95) stays clean
            read[p] = swap[read[p]]
        hits = aligner.map("".join(read))
        assert hits and hits[0].r_st == at and hits[0].NM == 9, hits
        assert hits[0].mapq >= 30, hits[0]


def test_pair_not_confident_from_a_divergent_crowded_end(tmp_path: Path) -> None:
    # R1 lies in a region with two identical copies (a tie), R2 in a unit with sixteen copies,
    # one base apart and too frequent to index, so that other copies go unseen (R2 is crowded,
    # or placed by mate rescue alone). The sample differs from the reference by several bases
    # per read, and here its R2 fits the copy beside the wrong R1 copy better. Only R2's score
    # among the copies it happened to see sets the two pairs apart: too little for a read that
    # far from the reference, so the pair must not be placed confidently (it was, at MAPQ 40,
    # on the wrong copies; seen on a 3%-divergent K. pneumoniae sample, where bwa gives these
    # MAPQ 0).
    rng = random.Random(41)
    a, unit = random_seq(rng, 400), random_seq(rng, 400)

    def marked(i: int) -> str:
        at = 100 + 10 * i
        return unit[:at] + _other_base(unit[at]) + unit[at + 1:]

    parts, starts = [random_seq(rng, 3_000)], {}
    for i in range(16):
        if i < 2:
            starts[f"a{i}"] = sum(map(len, parts))
            parts.append(a)
        starts[f"b{i}"] = sum(map(len, parts))
        parts += [marked(i), random_seq(rng, 3_000)]
    chrom = "".join(parts)
    special = []
    for n in range(6):
        frag = chrom[starts["a1"] + 180 + 5 * n:starts["b1"] + 200 + 5 * n]
        # the fragment's B1 part, seen from R2: B0's marker carried, B1's lost, six other bases
        b_part = list(frag[-150:])
        off = 50 + 5 * n  # unit offset of b_part[0]
        b_part[100 - off] = marked(0)[100]
        b_part[110 - off] = unit[110]
        for p in rng.sample([p for p in range(150) if p + off not in (100, 110)], 6):
            b_part[p] = _other_base(b_part[p], 2)
        name = f"chr1_{starts['a1'] + 181 + 5 * n}_{starts['b1'] + 51 + 5 * n}_special{n}"
        special.append((name, frag[:150], revcomp("".join(b_part))))
    records = _align_with_background(tmp_path, chrom, special, max_occ=8, seed=42)
    assert len(records) == 2 * len(special)
    for r in records:
        fields = r.query_name.split("_")
        true = int(fields[2] if r.is_read2 else fields[1]) - 1
        if r.reference_start != true and r.mapping_quality >= 20:
            raise AssertionError(r.to_string())


def test_rescue_not_blocked_by_a_clipped_fragment(tmp_path: Path) -> None:
    # R1 is a repeat copy too frequent to index (99 bases) and a 51-base tail. Where R1 comes
    # from, the reference has the tail with five bases changed (no seed), and the exact tail
    # 30 bases on, beyond an extension band: R1's only seeds place the tail alone there
    # (99S51M), as a proper mate for R2. That fragment used to spare the rescue that finds the
    # whole read (150M, five mismatches) at its true place; it no longer counts as R2's mate
    # (rep10: a read placed at MAPQ 40 130 bases from its true place).
    rng = random.Random(52)
    unit, tail = random_seq(rng, 99), random_seq(rng, 51)
    changed = list(tail)
    for p in (0, 12, 24, 36, 48):  # every k-mer of R1 over the tail differs here
        changed[p] = _other_base(changed[p])
    parts = [random_seq(rng, 3_000)]
    for _ in range(10):  # the repeat, ten more copies
        parts += [unit, random_seq(rng, 2_000)]
    true_start = sum(map(len, parts))
    parts += [unit + "".join(changed) + random_seq(rng, 30) + tail, random_seq(rng, 3_000)]
    chrom = "".join(parts)
    special = []
    for n in range(5):
        frag = chrom[true_start:true_start + 470 + 7 * n]
        name = f"chr1_{true_start + 1}_{true_start + len(frag) - 149}_special{n}"
        special.append((name, unit + tail, revcomp(frag[-150:])))
    records = _align_with_background(tmp_path, chrom, special, max_occ=4, seed=53)
    firsts = [r for r in records if r.is_read1]
    assert len(firsts) == 5
    for r in firsts:
        assert (r.reference_start, r.cigarstring) == (true_start, "150M"), r.to_string()


@pytest.mark.parametrize("length", [25, 40, 60])
def test_long_indels_align_through(aligner: Aligner, genome, length: int) -> None:
    # Seeds either side of an indel longer than the chaining gap (24 diagonals) form two
    # chains over disjoint parts of the read: they are one placement, aligned across the indel
    # instead of soft-clipped at it.
    chrom = genome[1]["chr1"]
    at = 25_000
    deleted = chrom[at - 80:at] + chrom[at + length:at + length + 70]
    inserted = chrom[at - 80:at] + random_seq(random.Random(length), length) + chrom[at:at + 70]
    for read, op in ((deleted, "D"), (inserted, "I")):
        if op == "I" and length > 50:
            continue  # two 50-base flanks with a long insertion between: beyond one band
        hit = aligner.map(read)[0]
        assert hit.r_st == at - 80 and hit.q_st == 0 and hit.q_en == len(read), hit
        assert hit.cigar == f"80M{length}{op}70M", hit


@pytest.mark.parametrize("length", [36, 45, 60])
def test_short_unique_reads_are_confident(aligner: Aligner, genome, length: int) -> None:
    # A short read's seeds cannot cover two disjoint k-mers' worth: that alone must not make
    # its placement "crowded" (every read under 60 bases had MAPQ 0; found by a review).
    chrom = genome[1]["chr1"]
    for at in range(20_000, 30_000, 1_000):
        hit = aligner.map(chrom[at:at + length])[0]
        assert hit.r_st == at and hit.mapq >= 30, hit


def test_batch_equals_single(aligner: Aligner, genome) -> None:
    rng = random.Random(5)
    chrom = genome[1]["chr1"]
    reads = []
    for _ in range(60):
        p = rng.randrange(0, len(chrom) - 150)
        s = chrom[p:p + 150]
        reads.append(revcomp(s) if rng.random() < 0.5 else s)
    batch = aligner.map_batch(reads)
    assert batch == [aligner.map(r) for r in reads]
    assert batch == aligner.map_batch([r.encode() for r in reads])


def _write_single(path: Path, reads: list[tuple[str, str]]) -> Path:
    with open(path, "w") as f:
        for name, seq in reads:
            f.write(f"@{name}\n{seq}\n+\n{'I' * len(seq)}\n")
    return path


def test_seq_is_upper_case_with_n_for_non_bases(aligner: Aligner, genome, tmp_path) -> None:
    ref = genome[1]["chr1"][25_000:25_150]
    # soft-masked (lower case) bases, IUPAC codes, a '.' and U (read as T) in the input
    odd = (ref[:20].lower() + "R" + ref[21:60] + "." + ref[61:100] + "u" + ref[101:140] + "y"
           + ref[141:])
    comp = {"A": "T", "C": "G", "G": "C", "T": "A", "N": "N"}
    odd_rc = "".join(comp.get(c, c) for c in reversed(odd.upper().replace("U", "T")))
    fq = _write_single(tmp_path / "odd.fq", [("fwd", odd), ("rev", odd_rc)])
    out = tmp_path / "odd.bam"
    aligner.align_fastq(fq, None, out)
    want = "".join(c if c in "ACGT" else "N" for c in odd.upper().replace("U", "T"))
    with pysam.AlignmentFile(str(out)) as f:
        recs = {r.query_name: r for r in f}
    assert not recs["fwd"].is_reverse and recs["fwd"].query_sequence == want
    # the reverse complement maps to the reverse strand, where SEQ is stored forward again
    assert recs["rev"].is_reverse and recs["rev"].query_sequence == want


def test_circular_origin_read_gets_supplementary(aligner: Aligner, genome, tmp_path) -> None:
    plasmid = genome[1]["plasmid_1"]
    fq = _write_single(tmp_path / "r.fq", [("across_origin", plasmid[-80:] + plasmid[:70])])
    out = tmp_path / "o.bam"
    aligner.align_fastq(fq, None, out)
    recs = list(pysam.AlignmentFile(str(out)))
    assert len(recs) == 2
    primary = next(r for r in recs if not r.is_supplementary)
    supp = next(r for r in recs if r.is_supplementary)
    assert (primary.reference_start, primary.cigarstring) == (7_920, "80M70S")
    assert (supp.reference_start, supp.cigarstring) == (0, "80S70M")
    assert primary.get_tag("SA") == f"plasmid_1,1,+,80S70M,{supp.mapping_quality},0;"
    assert supp.get_tag("SA") == f"plasmid_1,7921,+,80M70S,{primary.mapping_quality},0;"


def _simulate(genome, tmp_path: Path, n_pairs: int, seed: int) -> tuple[Path, Path]:
    _, contigs = genome
    haps, _ = plant_variants(contigs, rate=0.002, seed=seed)
    r1, r2 = simulate_pairs(haps, n_pairs, seed=seed + 1)
    return write_fastq(tmp_path / "r1.fq.gz", r1), write_fastq(tmp_path / "r2.fq.gz", r2)


def _records(path: Path) -> list[str]:
    with pysam.AlignmentFile(str(path)) as f:
        return [r.to_string() for r in f]


def _nm_md(read: pysam.AlignedSegment, ref: str) -> tuple[int, str]:
    """NM and MD recomputed from the reference and the CIGAR, independently of the aligner."""
    seq = read.query_sequence
    qi, ti, nm, run, md = 0, read.reference_start, 0, 0, ""
    for op, n in read.cigartuples:
        if op == 4:
            qi += n
        elif op == 0:
            for _ in range(n):
                if seq[qi] == ref[ti] and seq[qi] != "N":
                    run += 1
                else:
                    md += f"{run}{ref[ti]}"
                    run, nm = 0, nm + 1
                qi, ti = qi + 1, ti + 1
        elif op == 1:
            qi, nm = qi + n, nm + n
        elif op == 2:
            md += f"{run}^{ref[ti:ti + n]}"
            run, nm, ti = 0, nm + n, ti + n
    return nm, md + str(run)


def test_paired_run_is_accurate_and_consistent(aligner: Aligner, genome, tmp_path) -> None:
    r1, r2 = _simulate(genome, tmp_path, 3_000, seed=21)
    out = tmp_path / "pairs.bam"
    stats = aligner.align_fastq(r1, r2, out, read_group="@RG\\tID:g1\\tSM:s")
    assert stats["reads"] == 6_000
    # where the run's time went: every stage ran, and threads x wall bounds their sum
    stages = stats["stage_seconds"]
    assert set(stages) == {"read", "seed", "extend", "pair", "records", "write"}
    assert all(v > 0 for v in stages.values()), stages
    assert sum(stages.values()) <= aligner.threads * stats["seconds"] * 1.05 + 0.01
    model = stats["insert_model"]
    assert model["valid"] and abs(model["mean"] - 400) < 10 and abs(model["sd"] - 40) < 8
    pysam.samtools.quickcheck(str(out))
    assert Path(str(out) + ".bai").exists()
    acc = mapping_accuracy(out)
    assert acc.reads == 6_000
    assert acc.mapped_fraction(20) > 0.95
    assert acc.wrong_fraction(20) < 0.002
    contigs = genome[1]
    by_name: dict[str, dict[bool, pysam.AlignedSegment]] = {}
    last = (-1, -1)
    with pysam.AlignmentFile(str(out)) as f:
        for r in f:
            key = (r.reference_id if r.reference_id >= 0 else 1 << 30, r.reference_start)
            assert key >= last, "output must be coordinate-sorted"
            last = key
            assert r.get_tag("RG") == "g1"
            if r.is_unmapped or r.is_supplementary:
                continue
            nm, md = _nm_md(r, contigs[r.reference_name])
            assert (r.get_tag("NM"), r.get_tag("MD")) == (nm, md), r.to_string()
            assert r.get_tag("AS") <= r.query_alignment_length
            by_name.setdefault(r.query_name, {})[r.is_read1] = r
    proper = 0
    for pair in by_name.values():
        if len(pair) != 2:
            continue
        a, b = pair[True], pair[False]
        for x, y in ((a, b), (b, a)):
            assert (x.next_reference_id, x.next_reference_start) == (y.reference_id,
                                                                     y.reference_start)
            assert x.mate_is_reverse == y.is_reverse
            assert x.get_tag("MC") == y.cigarstring
            assert x.get_tag("MQ") == y.mapping_quality
        if a.is_proper_pair:
            proper += 1
            assert b.is_proper_pair and a.is_reverse != b.is_reverse
            assert a.template_length == -b.template_length != 0
    assert proper > 0.95 * 3_000


@pytest.mark.parametrize("level", ["scalar", "avx2", "avx512"])
def test_output_identical_for_simd_threads_and_batch(genome, tmp_path, level: str) -> None:
    if _core.simd_level() == "scalar" and level != "scalar":
        pytest.skip("CPU without AVX2")
    r1, r2 = _simulate(genome, tmp_path, 800, seed=33)
    idx = Index.build(genome[0])
    base = tmp_path / "base.bam"
    Aligner(idx, simd="scalar").align_fastq(r1, r2, base)
    other = tmp_path / f"{level}.bam"
    stats = Aligner(idx, simd=level, threads=2).align_fastq(r1, r2, other, batch_reads=37,
                                                            memory_bytes=50_000)
    assert _records(base) == _records(other)
    # The scratch space the sort needed: what it spilled, and the most on disk at once.
    assert 0 < stats["spill_peak_bytes"] <= stats["spilled_bytes"]


@pytest.mark.parametrize("n_pairs", [3, 301])
def test_leading_pairs_split_over_threads(genome, tmp_path, n_pairs: int) -> None:
    # The pairs that estimate the insert-size model are mapped before any batch, split over the
    # threads in pieces (more threads than reads included): same records and counts as one.
    r1, r2 = _simulate(genome, tmp_path, n_pairs, seed=71)
    idx = Index.build(genome[0])
    runs = {}
    for threads in (1, 4):
        out = tmp_path / f"t{threads}.bam"
        stats = Aligner(idx, threads=threads, insert_model_pairs=n_pairs).align_fastq(
            r1, r2, out, batch_reads=7)
        runs[threads] = (_records(out), {k: stats[k] for k in
                                         ("reads", "mapped", "extend_jobs", "cells")})
    assert runs[1][1]["mapped"] > 0.9 * 2 * n_pairs
    assert runs[4] == runs[1]


def test_python_bam_writer_sorts_and_indexes(aligner: Aligner, genome, tmp_path) -> None:
    from gmsaccel.align import bam_writer, sam_line

    chrom = genome[1]["chr1"]
    starts = [50_000, 3_000, 27_000, 12_345]
    reads = [(f"r{i}", chrom[p:p + 100]) for i, p in enumerate(starts)]
    reads[1] = ("r1", revcomp(reads[1][1]))
    out = tmp_path / "api.bam"
    with bam_writer(out, aligner.index, read_group="@RG\\tID:api\\tSM:s") as w:
        for name, seq in reads:
            hits = aligner.map(seq)
            w.add_sam_line(sam_line(name, seq, hits[0] if hits else None, read_group="api"))
        w.add_sam_line(sam_line("unmapped", "N" * 50, None, read_group="api"))
    pysam.samtools.quickcheck(str(out))
    with pysam.AlignmentFile(str(out)) as f:
        recs = list(f)
        assert f.header["HD"]["SO"] == "coordinate"
    assert [r.reference_start for r in recs[:4]] == sorted(starts)
    assert recs[-1].is_unmapped and recs[-1].query_name == "unmapped"
    assert all(r.get_tag("RG") == "api" for r in recs)
    rc = next(r for r in recs if r.query_name == "r1")
    assert rc.is_reverse and rc.query_sequence == chrom[3_000:3_100]
    assert Path(str(out) + ".bai").exists()


def test_wrapped_fastq_and_fasta_reads_align_alike(aligner: Aligner, genome, tmp_path) -> None:
    """The same reads as 4-line FASTQ, as FASTQ wrapped at 60 columns and as FASTA: wrapped
    FASTQ writes the same records; FASTA the same but for QUAL '*' and a mate score (ms) of 0."""
    r1, r2 = _simulate(genome, tmp_path, 300, seed=41)
    inputs = {"fastq": (r1, r2)}
    for form in ("wrapped", "fasta"):
        paths = []
        for src in (r1, r2):
            with pysam.FastxFile(str(src)) as f:
                text = "".join(
                    f">{r.name}\n{wrap(r.sequence)}" if form == "fasta"
                    else f"@{r.name}\n{wrap(r.sequence)}+\n{wrap(r.quality)}"
                    for r in f
                )
            dest = tmp_path / f"{form}_{src.name}"
            with gzip.open(dest, "wt") as out:
                out.write(text)
            paths.append(dest)
        inputs[form] = tuple(paths)
    records = {}
    for form, (a, b) in inputs.items():
        out = tmp_path / f"{form}.bam"
        aligner.align_fastq(a, b, out, mark_duplicates=True)
        with pysam.AlignmentFile(str(out)) as f:
            records[form] = list(f)
    assert [r.to_string() for r in records["wrapped"]] == [r.to_string() for r in records["fastq"]]
    assert len(records["fasta"]) == len(records["fastq"]) == 600
    for fa, fq in zip(records["fasta"], records["fastq"], strict=True):
        assert fa.query_qualities is None and fq.query_qualities is not None
        assert fa.has_tag("ms") == fq.has_tag("ms")
        if fa.has_tag("ms"):
            assert fa.get_tag("ms") == 0 < fq.get_tag("ms")
        for r in (fa, fq):
            r.query_qualities = None
            if r.has_tag("ms"):
                r.set_tag("ms", None)
        assert fa.to_string() == fq.to_string()


def wrap(text: str, width: int = 60) -> str:
    return "".join(text[i : i + width] + "\n" for i in range(0, len(text), width))


COMMENT_TAGS = ("RX:Z:ACGT-TTGA\tBC:Z:NGT CTA\tXi:i:-70000\tXf:f:1.5e3\tXb:B:c,1,-2\tXh:H:1AE3"
                "\tXa:A:q")


def _commented_pairs(genome, tmp_path: Path, comments: dict[int, str]) -> tuple[Path, Path]:
    """100 simulated pairs whose R1 and R2 records carry the same comment (record i: comments[i],
    else COMMENT_TAGS)."""
    r1, r2 = _simulate(genome, tmp_path, 100, seed=53)
    paths = []
    for src in (r1, r2):
        with pysam.FastxFile(str(src)) as f:
            recs = [(f"{r.name} {comments.get(i + 1, COMMENT_TAGS)}", r.sequence, r.quality)
                    for i, r in enumerate(f)]
        paths.append(write_fastq(tmp_path / f"c_{src.name}", recs))
    return paths[0], paths[1]


def test_copy_comment_puts_sam_tags_on_every_record(aligner: Aligner, genome, tmp_path) -> None:
    r1, r2 = _commented_pairs(genome, tmp_path, {})
    plain, copied = tmp_path / "plain.bam", tmp_path / "copied.bam"
    aligner.align_fastq(r1, r2, plain, read_group="@RG\tID:g\tSM:s")
    aligner.align_fastq(r1, r2, copied, read_group="@RG\tID:g\tSM:s", copy_comment=True)
    want = [("RX", "ACGT-TTGA", "Z"), ("BC", "NGT CTA", "Z"), ("Xi", -70000, "i"),
            ("Xf", 1500.0, "f"), ("Xb", [1, -2], "B"), ("Xh", "1AE3", "H"), ("Xa", "q", "A")]
    with pysam.AlignmentFile(str(plain)) as f:
        before = list(f)
    with pysam.AlignmentFile(str(copied)) as f:
        after = list(f)
    assert len(after) == len(before) >= 200
    for a, b in zip(before, after, strict=True):
        tags = b.get_tags(with_value_type=True)
        copied_tags = [(t, list(v) if t == "Xb" else v, ty) for t, v, ty in tags[-len(want):]]
        assert copied_tags == want, b.to_string()
        assert tags[: -len(want)] == a.get_tags(with_value_type=True)  # the aligner's own first
        b.set_tags(tags[: -len(want)])
        assert a.to_string() == b.to_string()


def test_copy_comment_skips_empty_fields(aligner: Aligner, genome, tmp_path) -> None:
    r1, r2 = _commented_pairs(genome, tmp_path, {3: "RX:Z:A\t\tBC:Z:C\t"})
    out = tmp_path / "e.bam"
    aligner.align_fastq(r1, r2, out, copy_comment=True)
    with pysam.AlignmentFile(str(out)) as f:
        tags = {tuple(t for t, _ in r.get_tags()[-2:]) for r in f if r.query_name.endswith(":2")}
    assert tags == {("RX", "BC")}


@pytest.mark.parametrize(("comment", "why"), [
    ("1:N:0:ATCACG", "is not TAG:TYPE:VALUE"),  # CASAVA's, not tags
    ("XX:i:abc", "not a valid value of type 'i'"),
    ("XX:i:5 YY:Z:a", "not a valid value of type 'i'"),  # fields are split by tabs only
    ("XX:B:c,1.5", "not a valid value of type 'B'"),
    ("XX:H:ABC", "not a valid value of type 'H'"),
    ("XX:Q:1", "not a valid value of type 'Q'"),
    ("RX:Z:AC\tNM:i:0", "repeats a tag the aligner writes"),
    ("RX:Z:A\tRX:Z:B", "repeats a tag of the same comment"),
    ("XX:i:4294967296", "not a valid value of type 'i'"),  # past the range of i
    ("XX:i:-2147483649", "not a valid value of type 'i'"),
    ("XX:B:c,200", "not a valid value of type 'B'"),  # htslib would make it B:C quietly
    ("XX:B:C,-1", "not a valid value of type 'B'"),
    ("XX:B:I,5000000000", "not a valid value of type 'B'"),
    ("XX:f:1e50", "not a valid value of type 'f'"),  # not finite as a float
    ("RG:Z:other", "sets RG, which comes from --read-group"),
])
def test_copy_comment_refuses_what_is_not_sam_tags(aligner: Aligner, genome, tmp_path,
                                                   comment: str, why: str) -> None:
    r1, r2 = _commented_pairs(genome, tmp_path, {57: comment})
    out = tmp_path / "out" / "x.bam"
    out.parent.mkdir()
    with pytest.raises(_core.InputError) as info:
        aligner.align_fastq(r1, r2, out, copy_comment=True)
    msg = str(info.value)
    assert msg.startswith(f"{r1}: record 57 (chr") and why in msg, msg
    assert list(out.parent.iterdir()) == []
    aligner.align_fastq(r1, r2, out)  # without copying, comments are not read


_tag_names = st.tuples(st.sampled_from("XYZxyz"), st.sampled_from("0123456789ABCabc")).map(
    "".join)
_printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
_tag_values = st.one_of(
    st.tuples(st.just("A"), st.characters(min_codepoint=33, max_codepoint=126)),
    st.tuples(st.just("i"), st.integers(-(2**31), 2**32 - 1)),
    st.tuples(st.just("f"), st.sampled_from([0.5, -2.0, 0.125, 3.25e5, 1e2])),  # float32-exact
    st.tuples(st.just("Z"), _printable),
    st.tuples(st.just("H"), st.binary(max_size=6).map(lambda b: b.hex().upper())),
    st.tuples(st.just("B"), st.lists(st.integers(-128, 127), max_size=5)),
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.dictionaries(_tag_names, _tag_values, min_size=1, max_size=5))
def test_property_copied_comment_tags_read_back(aligner: Aligner, genome, tmp_path, fields) -> None:
    def text(tag: str, ty: str, v) -> str:
        if ty == "B":
            return f"{tag}:B:c" + "".join(f",{x}" for x in v)
        return f"{tag}:{ty}:{v}"

    comment = "\t".join(text(tag, ty, v) for tag, (ty, v) in fields.items())
    seq = genome[1]["chr1"][20_000:20_100]
    fq = write_fastq(tmp_path / "one.fq", [(f"r1 {comment}", seq, "I" * len(seq))])
    out = tmp_path / "one.bam"
    aligner.align_fastq(fq, None, out, copy_comment=True)
    with pysam.AlignmentFile(str(out)) as f:
        (rec,) = list(f)
    # (get_tag, not get_tags: pysam 0.24's get_tags reads I values >= 2^31 as negative)
    got = {t: list(rec.get_tag(t)) if ty == "B" else rec.get_tag(t)
           for t, (ty, _) in fields.items()}
    assert got == {t: list(v) if ty == "B" else v for t, (ty, v) in fields.items()}


def _record_fields(r: pysam.AlignedSegment) -> tuple:
    # (CRAM keeps MD and NM as the reference gives them, not in the order written)
    return (r.to_string().split("\t")[:11], dict(r.get_tags()))


def test_cram_output_holds_the_bams_records(aligner: Aligner, genome, tmp_path) -> None:
    r1, r2 = _simulate(genome, tmp_path, 300, seed=43)
    bam, cram = tmp_path / "a.bam", tmp_path / "a.cram"
    aligner.align_fastq(r1, r2, bam, mark_duplicates=True, read_group="@RG\tID:g\tSM:s")
    aligner.align_fastq(r1, r2, cram, mark_duplicates=True, read_group="@RG\tID:g\tSM:s",
                        fasta=genome[0])
    assert (tmp_path / "a.cram.crai").exists()
    with pysam.AlignmentFile(str(bam)) as a, \
            pysam.AlignmentFile(str(cram), reference_filename=str(genome[0])) as c:
        # (htslib's CRAM writer adds the FASTA's path to each @SQ as UR)
        sq = [{k: v for k, v in d.items() if k != "UR"} for d in c.header.to_dict()["SQ"]]
        assert c.is_cram and a.header.to_dict()["SQ"] == sq
        want = [_record_fields(r) for r in a]
        assert [_record_fields(r) for r in c] == want and len(want) >= 600
    # an index without a FASTA beside it: CRAM cannot be made, and says so before any work
    Index.build(genome[0]).save(tmp_path / "lone.gxi")
    idx_only = Aligner(Index.load(tmp_path / "lone.gxi"))
    with pytest.raises(_core.InputError, match="CRAM output needs the reference FASTA"):
        idx_only.align_fastq(r1, r2, tmp_path / "b.cram")
    # nor against a FASTA that is not the index's reference (other bases, fewer contigs), or
    # one htslib cannot index (plain gzip)
    contigs = genome[1]
    other = tmp_path / "other.fa"
    other.write_text("".join(f">{n}\n{s[::-1]}\n" for n, s in contigs.items()))
    fewer = tmp_path / "fewer.fa"
    fewer.write_text(f">chr1\n{contigs['chr1']}\n")
    gz = tmp_path / "ref.fa.gz"
    with gzip.open(gz, "wt") as f:
        f.write("".join(f">{n}\n{s}\n" for n, s in contigs.items()))
    for fasta, message in ((other, "not the reference of the index"),
                           (fewer, "contig names or lengths differ"), (gz, "bgzip")):
        with pytest.raises(_core.InputError, match=message):
            aligner.align_fastq(r1, r2, tmp_path / "b.cram", fasta=fasta)
    assert not list(tmp_path.glob("b.cram*"))


def _interleave(r1: Path, r2: Path, dest: Path, edit=None) -> Path:
    """The pairs of r1 and r2 in one file, each pair's reads one after the other; edit(records)
    may change the list of (name, seq, qual) first."""
    with pysam.FastxFile(str(r1)) as a, pysam.FastxFile(str(r2)) as b:
        recs = [(x.name + (f" {x.comment}" if x.comment else ""), x.sequence, x.quality)
                for pair in zip(a, b, strict=True) for x in pair]
    return write_fastq(dest, edit(recs) if edit else recs)


def test_interleaved_pairs_align_as_two_files(aligner: Aligner, genome, tmp_path) -> None:
    r1, r2 = _simulate(genome, tmp_path, 400, seed=47)
    both = _interleave(r1, r2, tmp_path / "both.fq.gz")
    two, one = tmp_path / "two.bam", tmp_path / "one.bam"
    want = aligner.align_fastq(r1, r2, two, mark_duplicates=True)
    got = aligner.align_fastq(both, None, one, mark_duplicates=True, interleaved=True)
    assert _records(one) == _records(two) and got["reads"] == want["reads"] == 800
    assert got["insert_model"] == want["insert_model"]
    with pytest.raises(ValueError, match="give no r2"):
        aligner.align_fastq(both, r2, tmp_path / "x.bam", interleaved=True)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda recs: recs[:-1], "ends after 799 records, an odd number"),
    (lambda recs: recs[:301] + recs[302:303] + recs[301:302] + recs[303:],
     "records 301 (chr"),  # pair 151's second read swapped with pair 152's first
])
def test_interleaved_errors_name_the_records(aligner: Aligner, genome, tmp_path, edit,
                                             message: str) -> None:
    r1, r2 = _simulate(genome, tmp_path, 400, seed=47)
    bad = _interleave(r1, r2, tmp_path / "bad.fq.gz", edit)
    out = tmp_path / "out" / "x.bam"
    out.parent.mkdir()
    with pytest.raises(_core.InputError) as info:
        aligner.align_fastq(bad, None, out, interleaved=True, batch_reads=64)
    assert str(info.value).startswith(f"{bad}: ") and message in str(info.value)
    assert list(out.parent.iterdir()) == []


def test_interleaved_comment_errors_count_both_mates(aligner: Aligner, genome, tmp_path) -> None:
    r1, r2 = _simulate(genome, tmp_path, 100, seed=49)

    def bad_comment(recs):
        name, s, q = recs[9]  # record 10: pair 5's second read
        recs[9] = (f"{name} 1:N:0:ACGT", s, q)
        return recs

    bad = _interleave(r1, r2, tmp_path / "c.fq.gz", bad_comment)
    with pytest.raises(_core.InputError, match=rf"^{bad}: record 10 \("):
        aligner.align_fastq(bad, None, tmp_path / "c.bam", interleaved=True, copy_comment=True)


# ----------------------------------------------------------------------------------------------
# Chaining against its definition


def _chains_by_definition(anchors, k=21, max_candidates=8, max_diag_gap=24, max_indel_gap=64,
                          band_padding=8, max_half_band=64):
    """Runs of one strand whose diagonals step by at most max_diag_gap; a run over a part of the
    read disjoint from the previous one (overlap <= k/2), close enough in diagonal for one band,
    joins it (an indel); chains at a quarter of the best cover (and k) or above, best first."""
    anchors = sorted(anchors)  # (rev, diag, qpos)
    runs, chains = [], []
    for a in anchors:
        if runs and runs[-1][-1][0] == a[0] and a[1] - runs[-1][-1][1] <= max_diag_gap:
            runs[-1].append(a)
        else:
            runs.append([a])
    for run in runs:
        covered = set()
        for _, _, q in run:
            covered.update(range(max(q, 0), q + k))  # read bases
        c = {"rev": run[0][0], "lo": run[0][1], "hi": run[-1][1], "cover": len(covered),
             "q_lo": min(q for *_, q in run), "q_hi": max(0, max(q for *_, q in run) + k),
             "n": len(run)}
        if chains:
            p = chains[-1]
            overlap = min(p["q_hi"], c["q_hi"]) - max(p["q_lo"], c["q_lo"])
            if (p["rev"] == c["rev"] and c["lo"] - p["hi"] <= max_indel_gap
                    and c["hi"] - p["lo"] <= 2 * (max_half_band - band_padding)
                    and overlap <= k // 2):
                p.update(hi=c["hi"], n=p["n"] + c["n"], q_lo=min(p["q_lo"], c["q_lo"]),
                         q_hi=max(p["q_hi"], c["q_hi"]),
                         cover=p["cover"] + c["cover"] - max(overlap, 0))
                continue
        chains.append(c)
    if not chains:
        return [], 0
    floor = max(k, max(c["cover"] for c in chains) // 4)
    order = sorted(chains, key=lambda c: (-c["cover"], c["rev"], c["lo"]))
    ranked = [c for c in order if c["cover"] >= floor] or order[:1]  # the best, even below k
    keep = max(min(len(ranked), max_candidates), 1)
    unexplored = ranked[keep]["cover"] if keep < len(ranked) else 0
    keep = min(keep, len(ranked))
    return [(c["rev"], c["lo"], c["hi"], c["cover"], c["q_lo"], c["q_hi"], c["n"])
            for c in ranked[:keep]], unexplored


@st.composite
def _read_anchors(draw):
    """A read's anchors: placements (a diagonal, copies of it within a few diagonals, on either
    strand) with anchors along the read, as repeats give; diagonals from before the contig
    start to past 2^32, and now and then a query position past 2^20 (a very long read)."""
    anchors = []
    for _ in range(draw(st.integers(0, 12))):
        rev = draw(st.integers(0, 1))
        diag = draw(st.one_of(st.integers(-300, 2_000), st.integers(2**31 - 500, 2**31 + 500),
                              st.integers(2**32 - 200, 2**32 + 4_000)))
        for _ in range(draw(st.integers(1, 12))):
            q = draw(st.one_of(st.integers(0, 280), st.integers(2**20 - 5, 2**20 + 50),
                               st.integers(-30, -1))  # (negative: covers under k)
                     if draw(st.integers(0, 30)) == 0 else st.integers(0, 280))
            anchors.append((rev, diag + draw(st.integers(-90, 90)), q))
    return anchors


@settings(max_examples=300, deadline=None)
@given(anchors=_read_anchors(), k=st.sampled_from([15, 21]),
       max_candidates=st.sampled_from([1, 3, 8]))
def test_chaining_matches_its_definition(anchors, k: int, max_candidates: int) -> None:
    """Also with covers below k (query positions below 0): the best chain is still kept."""
    got = _core.chain_anchors([a[0] for a in anchors], [a[2] for a in anchors],
                              [a[1] for a in anchors], k=k, max_candidates=max_candidates)
    assert (got[0], got[1]) == _chains_by_definition(anchors, k, max_candidates)
