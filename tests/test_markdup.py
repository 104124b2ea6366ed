"""Duplicate marking (csrc/markdup.cpp, BamWriter(mark_duplicates=True)): random templates
against a plain Python statement of the rule and against samtools markdup -m s, tie-breaking,
bounded holding over spilled runs, and the aligner end to end on planted PCR duplicates."""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

import pysam
import pytest
from conftest import random_genome, run_cli, write_fasta
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gmsaccel import _core
from gmsaccel.align import Aligner, Index
from gmsaccel.simulate import plant_variants, simulate_pairs, write_fastq

HEADER = "@HD\tVN:1.6\tSO:coordinate\n@SQ\tSN:c1\tLN:5000\n@SQ\tSN:c2\tLN:5000\n"
CONTIGS = ["c1", "c2"]
# Clips at either end, hard clips, indels: what moves a read's position but not its 5' end.
CIGARS = ["44M", "4S40M", "40M4S", "3S38M3S", "20M2D24M", "20M2I22M", "2H42M", "40M2H",
          "6S38M"]


def query_length(cigar: str) -> int:
    return sum(int(n) for n, op in re.findall(r"(\d+)([MIDNSHP=X])", cigar) if op in "MIS=X")


def ref_length(cigar: str) -> int:
    return sum(int(n) for n, op in re.findall(r"(\d+)([MIDNSHP=X])", cigar) if op in "MDN=X")


@dataclass
class Read:
    name: str
    flag: int
    contig: int
    pos: int  # 0-based
    cigar: str
    qual: str
    mate: Read | None = None

    def sam(self) -> str:
        mapped = not self.flag & 4
        seq = "A" * query_length(self.cigar) if mapped else "A" * len(self.qual)
        rname = CONTIGS[self.contig]
        fields = [self.name, str(self.flag), rname, str(self.pos + 1),
                  "60" if mapped else "0", self.cigar if mapped else "*"]
        tags = []
        if self.mate is not None:
            m = self.mate
            fields += ["=" if m.contig == self.contig else CONTIGS[m.contig], str(m.pos + 1), "0"]
            if not m.flag & 4:
                tags.append(f"MC:Z:{m.cigar}")
            tags.append(f"ms:i:{score(m.qual)}")
        else:
            fields += ["*", "0", "0"]
        return "\t".join([*fields, seq, self.qual or "*", *tags])


def score(qual: str) -> int:
    return sum(q - 33 for q in map(ord, qual) if q - 33 >= 15)


def template_strategy(n: int):
    """n templates whose scores are all different (j bases of Q40 for template j, the rest Q2),
    crowded onto a few positions so that many share their 5' ends."""
    one = st.tuples(
        st.sampled_from(["pair", "pair", "pair", "mate_unmapped", "single"]),
        st.integers(0, 1), st.integers(100, 112), st.sampled_from(CIGARS), st.booleans(),
        st.integers(0, 1), st.integers(-10, 40), st.sampled_from(CIGARS), st.booleans())
    return st.lists(one, min_size=n, max_size=n)


def build(templates) -> list[Read]:
    reads: list[Read] = []
    for j, (kind, tid, pos, cig, rev, mtid, offset, mcig, mrev) in enumerate(templates, 1):
        name = f"t{j:03d}"
        # R1 carries the template's score; R2's Q2 bases count for nothing.
        q1 = "I" * min(j, query_length(cig)) + "#" * max(0, query_length(cig) - j)
        if kind == "single":
            reads.append(Read(name, 16 if rev else 0, tid, pos, cig, q1))
            continue
        r1 = Read(name, 1 | 64 | (16 if rev else 0), tid, pos, cig, q1)
        if kind == "mate_unmapped":
            # the unmapped mate sits at its mapped mate's place, as aligners put it
            r2 = Read(name, 1 | 128 | 4, tid, pos, "*", "#" * 44)
            r1.flag |= 8
            r2.flag |= 32 if rev else 0
        else:
            mpos = max(0, pos + offset) if mtid == tid else 100 + offset % 13
            r2 = Read(name, 1 | 128 | (16 if mrev else 0), mtid, mpos, mcig,
                      "#" * query_length(mcig))
            r1.flag |= 32 if mrev else 0
            r2.flag |= 32 if rev else 0
        r1.mate, r2.mate = r2, r1
        reads += [r1, r2]
    return reads


def write(path: Path, reads: list[Read], mark: bool, memory_bytes: int = 64 << 20) -> dict:
    w = _core.BamWriter(str(path), HEADER, mark_duplicates=mark, memory_bytes=memory_bytes)
    w.add_many_sam([r.sam() for r in reads])
    w.close()
    return w.duplicate_stats


def flags(path: Path) -> list[tuple[str, bool, bool]]:
    """(name, is_read1, is_duplicate) of every record, in file order."""
    with pysam.AlignmentFile(str(path)) as f:
        return [(r.query_name, r.is_read1, r.is_duplicate) for r in f]


def five_prime(r: pysam.AlignedSegment) -> tuple[int, int, bool]:
    """(contig, unclipped 5' position, reverse) of a record."""
    ops = r.cigartuples
    lead = sum(n for _, n in _leading(ops))
    trail = sum(n for _, n in _leading(ops[::-1]))
    if r.is_reverse:
        return (r.reference_id, r.reference_end - 1 + trail, True)
    return (r.reference_id, r.reference_start - lead, False)


def _leading(ops):
    """The clip operations at the start of ops."""
    for op, n in ops:
        if op not in (4, 5):
            return
        yield op, n


def mate_five_prime(r: pysam.AlignedSegment) -> tuple[int, int, bool]:
    ops = [(m.group(2), int(m.group(1))) for m in re.finditer(r"(\d+)([MIDNSHP=X])",
                                                              r.get_tag("MC"))]
    lead = trail = 0
    for op, n in ops:
        if op not in "SH":
            break
        lead += n
    for op, n in ops[::-1]:
        if op not in "SH":
            break
        trail += n
    span = sum(n for op, n in ops if op in "MDN=X")
    if r.mate_is_reverse:
        return (r.next_reference_id, r.next_reference_start + span - 1 + trail, True)
    return (r.next_reference_id, r.next_reference_start - lead, False)


def _reversed(name: str) -> tuple[int, ...]:
    """A key that sorts names in reverse, so that max() prefers the smallest."""
    return tuple(-b for b in name.encode()) + (1,)


def reference_marks(path: Path) -> set[tuple[str, bool]]:
    """The rule stated directly over the whole file: (name, is_read1) of every duplicate."""
    with pysam.AlignmentFile(str(path)) as f:
        recs = [r for r in f if not (r.is_unmapped or r.is_secondary or r.is_supplementary
                                     or r.is_qcfail)]
    paired = {id(r) for r in recs if r.is_paired and not r.mate_is_unmapped}
    pair_sets: dict[tuple, list[tuple[int, str]]] = {}
    ends_with_pairs: set[tuple] = set()
    fragment_sets: dict[tuple, list[tuple[int, int, str, bool]]] = {}
    for at, r in enumerate(recs):
        end = five_prime(r)
        own = score(r.qual)
        if id(r) in paired:
            ends_with_pairs.add(end)
            mate = mate_five_prime(r)
            if end < mate or (end == mate and r.is_read1):
                pair_sets.setdefault((end, mate), []).append((own + r.get_tag("ms"),
                                                              r.query_name))
        else:
            fragment_sets.setdefault(end, []).append((own, -at, r.query_name, r.is_read1))
    dups: set[tuple[str, bool]] = set()
    for members in pair_sets.values():
        keep = max(members, key=lambda m: (m[0], _reversed(m[1])))[1]  # ties: smallest name
        for _, n in members:
            if n != keep:
                dups |= {(n, True), (n, False)}
    for end, members in fragment_sets.items():
        best = max(members)  # ties: the first in the file
        keep = (best[2], best[3])
        for _, _, n, r1 in members:
            if end in ends_with_pairs or (n, r1) != keep:
                dups.add((n, r1))
    return dups


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(2, 40).flatmap(template_strategy))
def test_marks_match_the_rule_and_samtools(tmp_path_factory, templates) -> None:
    tmp = tmp_path_factory.mktemp("md")
    reads = build(templates)
    plain, marked, theirs = tmp / "plain.bam", tmp / "marked.bam", tmp / "samtools.bam"
    write(plain, reads, mark=False)
    stats = write(marked, reads, mark=True)
    ours = flags(marked)
    assert [(n, r1) for n, r1, _ in ours] == [(n, r1) for n, r1, _ in flags(plain)]
    assert {(n, r1) for n, r1, d in ours if d} == reference_marks(plain)
    pysam.samtools.markdup("-m", "s", str(plain), str(theirs), catch_stdout=False)
    assert ours == flags(theirs)
    assert stats["reads_marked"] == sum(d for _, _, d in ours)


def test_equal_scores_keep_the_smallest_name(tmp_path) -> None:
    a = build([("pair", 0, 100, "44M", False, 0, 30, "44M", True)] * 3)
    for i, r in enumerate(a):
        r.name = ["p1", "p0", "p2"][i // 2]
        r.qual = "I" * len(r.qual)  # every template scores the same
    out = tmp_path / "ties.bam"
    stats = write(out, a, mark=True)
    assert [(n, d) for n, _, d in flags(out)] == [
        ("p1", True), ("p0", False), ("p2", True), ("p1", True), ("p0", False), ("p2", True)]
    assert stats["pairs_examined"] == 3 and stats["pair_duplicates"] == 2
    assert stats["fraction"] == pytest.approx(4 / 6)


def test_equal_fragments_keep_the_first_in_the_file(tmp_path) -> None:
    """As samtools does; pairs, above, are settled by name."""
    reads = build([("single", 0, 100, "44M", rev, 0, 0, "44M", False)
                   for rev in (False, False, False, True, True)])
    for r, name in zip(reads, ["f2", "f0", "f1", "g1", "g0"], strict=True):
        r.name, r.qual = name, "I" * len(r.qual)
    out, theirs = tmp_path / "ties.bam", tmp_path / "samtools.bam"
    stats = write(out, reads, mark=True)
    assert [(n, d) for n, _, d in flags(out)] == [
        ("f2", False), ("f0", True), ("f1", True), ("g1", False), ("g0", True)]
    assert stats["unpaired_duplicates"] == 3
    write(tmp_path / "plain.bam", reads, mark=False)
    pysam.samtools.markdup("-m", "s", str(tmp_path / "plain.bam"), str(theirs),
                           catch_stdout=False)
    assert flags(out) == flags(theirs)


def test_templates_sharing_a_name_keep_one_whole_copy(tmp_path) -> None:
    """Two templates of one set named alike: one leader and one follower are kept, not both
    followers of the name (nor neither)."""
    reads = build([("pair", 0, 100, "44M", False, 0, 30, "44M", True)] * 3)
    for i, r in enumerate(reads):
        r.name = ["s", "s", "t"][i // 2]
        r.qual = "I" * len(r.qual)
    out = tmp_path / "same.bam"
    write(out, reads, mark=True)
    marks = flags(out)
    for read1 in (True, False):
        kept = [n for n, r1, d in marks if r1 == read1 and not d]
        assert kept == ["s"]


def test_sets_are_let_go_when_mates_never_come(tmp_path) -> None:
    """Duplicate pairs whose other ends all failed QC: each set is dropped once the stream is
    past where its followers would be, so the marker's memory does not grow with the input."""
    reads = []
    for k in range(600):
        pos = 100 + 60 * k
        copies = build([("pair", 0, pos, "44M", False, 0, 200, "44M", True)] * 3)
        for i, r in enumerate(copies):
            r.name = f"k{k}_{i // 2}"
            if r.flag & 128:
                r.flag |= 0x200  # QC-failed: never considered, so never releases the set
        reads += copies
    header = "@HD\tVN:1.6\tSO:coordinate\n@SQ\tSN:c1\tLN:100000\n@SQ\tSN:c2\tLN:100\n"
    w = _core.BamWriter(str(tmp_path / "qc.bam"), header, mark_duplicates=True)
    w.add_many_sam([r.sam() for r in reads])
    w.close()
    stats = w.duplicate_stats
    assert stats["pairs_examined"] == 1800 and stats["pair_duplicates"] == 1200
    assert stats["peak_sets_held"] < 30


def test_a_pair_without_ms_is_an_input_error(tmp_path) -> None:
    reads = build([("pair", 0, 100, "44M", False, 0, 30, "44M", True)])
    lines = [re.sub(r"\tms:i:-?\d+", "", r.sam()) for r in reads]
    out = tmp_path / "noms.bam"
    w = _core.BamWriter(str(out), HEADER, mark_duplicates=True)
    w.add_many_sam(lines)
    with pytest.raises(_core.InputError, match="record t001: .*ms tag"):
        w.close()
    assert not out.exists()


def test_one_copy_is_kept_whatever_the_scores(tmp_path) -> None:
    """Scores below zero (an ms tag from elsewhere) still leave one template of a set kept."""
    reads = build([("pair", 0, 100, "44M", False, 0, 30, "44M", True)] * 2)
    for i, r in enumerate(reads):
        r.name = f"q{i // 2}"
    lines = [r.sam().replace(f"ms:i:{score(r.mate.qual)}", "ms:i:-500") for r in reads]
    out = tmp_path / "neg.bam"
    w = _core.BamWriter(str(out), HEADER, mark_duplicates=True)
    w.add_many_sam(lines)
    w.close()
    assert [(n, d) for n, _, d in flags(out)] == [("q0", True), ("q1", False)] * 2


def test_marking_is_the_same_across_spilled_runs(tmp_path) -> None:
    rng = random.Random(5)
    templates = [(rng.choice(["pair", "pair", "single", "mate_unmapped"]), rng.randint(0, 1),
                  rng.randint(100, 160), rng.choice(CIGARS), rng.random() < 0.5,
                  rng.randint(0, 1), rng.randint(-10, 40), rng.choice(CIGARS),
                  rng.random() < 0.5) for _ in range(400)]
    # templates after the 40th or so all score the same: ties, settled by name
    reads = build(templates)
    rng.shuffle(reads)
    whole, spilled = tmp_path / "whole.bam", tmp_path / "spilled.bam"
    write(whole, reads, mark=True)
    # a run every few records: more runs than the writer merges at once, so runs are folded
    write(spilled, reads, mark=True, memory_bytes=600)
    assert flags(whole) == flags(spilled)
    assert {(n, r1) for n, r1, d in flags(whole) if d} == reference_marks(whole)
    assert sum(d for _, _, d in flags(whole)) > 100


def test_needs_sorted_output_and_mate_cigars(tmp_path) -> None:
    with pytest.raises(ValueError, match="sorted"):
        _core.BamWriter(str(tmp_path / "u.bam"), HEADER, sort=False, mark_duplicates=True)
    r1 = Read("x", 1 | 64 | 32, 0, 100, "44M", "I" * 44)
    r2 = Read("x", 1 | 128 | 16, 0, 150, "44M", "I" * 44)
    r1.mate, r2.mate = r2, r1
    line = r1.sam().replace("\tMC:Z:44M", "")
    w = _core.BamWriter(str(tmp_path / "m.bam"), HEADER, mark_duplicates=True)
    w.add_sam_line(line)
    with pytest.raises(_core.InputError, match="record x: .*MC tag"):
        w.close()
    assert not (tmp_path / "m.bam").exists()


# --- the aligner end to end -------------------------------------------------------------------

def _with_duplicates(pairs1, pairs2, rng: random.Random, fraction: float):
    """Each chosen pair is copied one to three times under a new name with new base qualities
    (a PCR copy sequenced again); returns the reads and the sets of names that are one
    molecule, original first."""
    out1, out2, sets = list(pairs1), list(pairs2), []
    for (n1, s1, q1), (_n2, s2, q2) in zip(pairs1, pairs2, strict=True):
        if rng.random() >= fraction:
            continue
        names = [n1]
        for k in range(rng.randint(1, 3)):
            name = f"{n1}_dup{k}"
            qa = "".join(rng.choice("5?I") for _ in q1)
            qb = "".join(rng.choice("5?I") for _ in q2)
            out1.append((name, s1, qa))
            out2.append((name, s2, qb))
            names.append(name)
        sets.append(names)
    order = list(range(len(out1)))
    rng.shuffle(order)
    return [out1[i] for i in order], [out2[i] for i in order], sets


@pytest.fixture(scope="module")
def duplicated_library(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dups")
    contigs = dict(random_genome(17, {"chrA": 40_000, "chrB": 15_000}))
    ref = write_fasta(tmp / "ref.fa", list(contigs.items()))
    haps, _ = plant_variants(contigs, rate=0.001, seed=3)
    p1, p2 = simulate_pairs(haps, 2_000, seed=4)
    r1, r2, sets = _with_duplicates(p1, p2, random.Random(9), 0.2)
    return ref, write_fastq(tmp / "r1.fq", r1), write_fastq(tmp / "r2.fq", r2), sets, tmp


def test_aligner_marks_planted_duplicates(duplicated_library) -> None:
    ref, r1, r2, sets, tmp = duplicated_library
    aligner = Aligner(Index.build(ref), threads=2)
    out = tmp / "marked.bam"
    stats = aligner.align_fastq(r1, r2, out, mark_duplicates=True, batch_reads=333,
                                memory_bytes=200_000)
    with pysam.AlignmentFile(str(out)) as f:
        primary = [r for r in f if not (r.is_secondary or r.is_supplementary)]
    dup = {r.query_name for r in primary if r.is_duplicate}
    scores: dict[str, int] = {}
    for r in primary:
        scores[r.query_name] = scores.get(r.query_name, 0) + score(r.qual)
    both_mapped = {r.query_name for r in primary if not r.is_unmapped and not r.mate_is_unmapped}
    kept_best = 0
    for names in sets:
        if not set(names) <= both_mapped:
            continue
        kept = [n for n in names if n not in dup]
        # one molecule, one kept template (unless an end landed elsewhere), the best-scoring
        assert len(kept) >= 1
        if len(kept) == 1:
            kept_best += scores[kept[0]] == max(scores[n] for n in names)
    assert kept_best >= 0.95 * len(sets)
    planted = sum(len(s) - 1 for s in sets)
    assert 0.95 * planted <= stats["duplicates"]["pair_duplicates"] <= planted * 1.05 + 5
    assert stats["duplicates"]["reads_marked"] == sum(r.is_duplicate for r in primary)
    # the same flags as samtools markdup -m s reading the same records without them
    theirs = tmp / "samtools.bam"
    pysam.samtools.markdup("-m", "s", "-c", str(out), str(theirs), catch_stdout=False)
    assert flags(out) == flags(theirs)


def test_marking_changes_only_the_duplicate_flag_and_ms(duplicated_library) -> None:
    ref, r1, r2, _, tmp = duplicated_library
    index = Index.build(ref)
    plain, marked = tmp / "plain.bam", tmp / "marked1.bam"
    Aligner(index).align_fastq(r1, r2, plain)
    Aligner(index, threads=2).align_fastq(r1, r2, marked, mark_duplicates=True, batch_reads=97)
    with pysam.AlignmentFile(str(plain)) as a, pysam.AlignmentFile(str(marked)) as b:
        for x, y in zip(a, b, strict=True):
            assert not x.is_duplicate
            assert x.flag == y.flag & ~1024
            if y.is_paired and not y.mate_is_unmapped:
                assert y.get_tag("ms") >= 0
            y.flag &= ~1024
            tags = [t for t in y.get_tags() if t[0] != "ms"]
            y.set_tags(tags)
            assert x.to_string() == y.to_string()
    with pytest.raises(ValueError, match="sorted"):
        Aligner(index).align_fastq(r1, r2, tmp / "u.bam", sort=False, mark_duplicates=True)


def test_cli_align_mark_duplicates(duplicated_library) -> None:
    ref, r1, r2, _, tmp = duplicated_library
    out, metrics = tmp / "cli.bam", tmp / "cli.json"
    proc = run_cli("align", ref, r1, r2, "-o", out, "--mark-duplicates", "--metrics", metrics)
    assert proc.returncode == 0, proc.stderr.decode()
    d = json.loads(metrics.read_text())["duplicates"]
    assert f"duplicates: {d['reads_marked']:,} reads marked" in proc.stderr.decode()
    assert d["reads_marked"] == sum(r.is_duplicate for r in pysam.AlignmentFile(str(out)))
    proc = run_cli("align", ref, r1, r2, "-o", tmp / "u.bam", "--mark-duplicates", "--unsorted")
    assert proc.returncode == 1 and b"--mark-duplicates needs sorted output" in proc.stderr
    assert not (tmp / "u.bam").exists()
