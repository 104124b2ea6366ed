"""BamWriter: sorted output with spills, byte-identical results, temporaries, and failures."""

from __future__ import annotations

import gzip
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pysam
import pytest
from conftest import write_fasta

import gmsaccel
from gmsaccel import _core

CONTIGS = [("chr1", 50_000), ("chr2", 30_000), ("chrM", 16_569)]
HEADER = "@HD\tVN:1.6\n" + "".join(f"@SQ\tSN:{n}\tLN:{ln}\n" for n, ln in CONTIGS)


def random_sam_lines(rng: random.Random, n: int) -> list[str]:
    lines = []
    for i in range(n):
        seq = "".join(rng.choice("ACGT") for _ in range(rng.randint(20, 60)))
        qual = "".join(chr(33 + rng.randint(2, 40)) for _ in seq)
        kind = rng.random()
        if kind < 0.1:  # unmapped, unplaced
            fields = [f"q{i}", "4", "*", "0", "0", "*", "*", "0", "0"]
        elif kind < 0.2:  # unmapped, placed at its mate's position
            ref, length = rng.choice(CONTIGS)
            pos = str(rng.randint(1, length - 100))
            fields = [f"q{i}", "69", ref, pos, "0", "*", "=", pos, "0"]
        else:
            ref, length = rng.choice(CONTIGS)
            # A narrow position range so that ties (same pos and strand) are common.
            pos = rng.randint(1, min(length - 100, 400)) if rng.random() < 0.3 else None
            pos = pos or rng.randint(1, length - 100)
            flag = 16 if rng.random() < 0.5 else 0
            fields = [f"q{i}", str(flag), ref, str(pos), "60", f"{len(seq)}M", "*", "0", "0"]
        lines.append("\t".join([*fields, seq, qual, f"XI:i:{i}"]))
    return lines


LINES = random_sam_lines(random.Random(2024), 3000)


def write(path: Path, lines: list[str], **kw: object) -> Path:
    with _core.BamWriter(str(path), HEADER, **kw) as w:
        w.add_many_sam(lines)
    assert w.records_written == len(lines)
    return path


def records(path: Path) -> list[pysam.AlignedSegment]:
    with pysam.AlignmentFile(str(path), check_sq=False) as f:
        return list(f.fetch(until_eof=True))


def record_keys(lines: list[str]) -> Counter[str]:
    return Counter(lines)


def sam_lines(path: Path) -> list[str]:
    return [r.to_string() for r in records(path)]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp" in p.name)


def test_sorted_output_is_valid_indexed_and_complete(tmp_path: Path) -> None:
    out = write(tmp_path / "out.bam", LINES)
    pysam.samtools.quickcheck(str(out))  # raises on failure
    assert (tmp_path / "out.bam.bai").exists()
    assert leftovers(tmp_path) == []
    with pysam.AlignmentFile(str(out)) as f:
        assert f.header.to_dict()["HD"]["SO"] == "coordinate"
        assert f.mapped + f.unmapped == len(LINES) and f.nocoordinate > 0
        # The index works: a region query returns exactly the overlapping records.
        assert sum(1 for _ in f.fetch("chr2", 0, 1000)) > 0
    recs = records(out)
    keys = [
        (r.reference_id if r.reference_id >= 0 else 1 << 31, r.reference_start, r.is_reverse)
        for r in recs
    ]
    assert keys == sorted(keys)
    # Ties keep arrival order (XI is the arrival number).
    for a, b in zip(recs, recs[1:], strict=False):
        ka = (a.reference_id, a.reference_start, a.is_reverse)
        if ka == (b.reference_id, b.reference_start, b.is_reverse):
            assert a.get_tag("XI") < b.get_tag("XI")
    assert Counter(sam_lines(out)) == record_keys(LINES)


def compression_available() -> bool:
    return _core.spill_compression_available()


SPILL_COMPRESSION = ["never", pytest.param("always", marks=pytest.mark.skipif(
    not compression_available(), reason="compressed spills need ISA-L"))]


@pytest.mark.parametrize("compression", SPILL_COMPRESSION)
@pytest.mark.parametrize("threads", [1, 2])
def test_spills_give_byte_identical_output(tmp_path: Path, compression: str,
                                           threads: int) -> None:
    ref = write(tmp_path / "mem.bam", LINES).read_bytes()
    # 2 kB per run: a few dozen records each, more than 32 runs, so runs are also folded; small
    # key ranges for the threaded merge, so that they start inside compressed blocks.
    kw = dict(spill_compression=compression, threads=threads, merge_range_bytes=3000)
    spilled = write(tmp_path / "spill.bam", LINES, memory_bytes=2000, **kw)
    assert spilled.read_bytes() == ref
    assert (tmp_path / "spill.bam.bai").read_bytes() == (tmp_path / "mem.bam.bai").read_bytes()
    spilled1 = write(tmp_path / "one.bam", LINES[:300], memory_bytes=1, **kw)  # a run per record
    assert spilled1.read_bytes() == write(tmp_path / "one_mem.bam", LINES[:300]).read_bytes()
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(not compression_available(), reason="compressed spills need ISA-L")
def test_compressed_spills_take_less_scratch_and_are_checked(tmp_path: Path) -> None:
    def spilled(compression: str) -> tuple[int, int]:
        with _core.BamWriter(str(tmp_path / "o.bam"), HEADER, memory_bytes=200_000,
                             spill_compression=compression) as w:
            w.add_many_sam(LINES)
        return w.spilled_bytes, w.spill_peak_bytes
    raw, compressed = spilled("never"), spilled("always")
    assert 0 < compressed[0] < 0.8 * raw[0]  # (random bases and qualities: they shrink least)
    assert compressed[1] <= compressed[0]
    with pytest.raises(ValueError, match="must be"):
        _core.BamWriter(str(tmp_path / "x.bam"), HEADER, spill_compression="zstd")
    # A spill cut short inside a block is an error naming it, not fewer records.
    spill_dir = tmp_path / "spills"
    spill_dir.mkdir()
    w = _core.BamWriter(str(tmp_path / "d.bam"), HEADER, memory_bytes=5000,
                        tmp_dir=str(spill_dir), spill_compression="always")
    w.add_many_sam(LINES[:500])
    spill = spill_dir / leftovers(spill_dir)[0]
    os.truncate(spill, spill.stat().st_size // 2)
    with pytest.raises(RuntimeError, match=f"{spill.name}: it ends inside a record"):
        w.close()
    assert not (tmp_path / "d.bam").exists() and leftovers(spill_dir) == []


def test_spills_are_folded_in_tiers(tmp_path: Path) -> None:
    # A run per record: 3,000 spills. Folding 32 spills of a level into one of the next
    # rewrites each record about twice here; folding every spill so far whenever there were
    # 128 (as before) rewrote the oldest ones at each of 23 folds, about 12 times the records.
    def spilled(memory_bytes: int) -> int:
        with _core.BamWriter(str(tmp_path / "o.bam"), HEADER, memory_bytes=memory_bytes) as w:
            w.add_many_sam(LINES)
        return w.spilled_bytes
    once = spilled(30_000)  # a dozen spills, never folded: each record written at most once
    assert once > 0
    assert once < spilled(1) <= 4 * once
    assert leftovers(tmp_path) == []


def test_records_larger_than_a_sort_buffer_chunk(tmp_path: Path) -> None:
    # The sort buffer holds records in 4 MiB chunks that later runs reuse; a record larger than a
    # chunk gets one of its own, and replaces a retained chunk too small for it.
    def placed_unmapped(i: int, pos: int, n: int) -> str:
        seq = ("ACGTTGCA" * (n // 8 + 1))[:n]
        return "\t".join([f"r{i}", "69", "chr1", str(pos), "0", "*", "=", str(pos), "0", seq,
                          "I" * n])
    sizes = [(900, 40), (100, 3_000_000), (700, 50), (300, 3_500_000), (500, 30)]
    lines = [placed_unmapped(i, pos, n) for i, (pos, n) in enumerate(sizes)]
    in_memory = write(tmp_path / "mem.bam", lines)
    spilled = write(tmp_path / "spill.bam", lines, memory_bytes=1)  # a run per record
    assert spilled.read_bytes() == in_memory.read_bytes()
    got = [(r.query_name, r.reference_start + 1, r.query_length) for r in records(spilled)]
    assert got == sorted([(f"r{i}", pos, n) for i, (pos, n) in enumerate(sizes)],
                         key=lambda t: t[1])
    assert leftovers(tmp_path) == []


def spilling_writer(tmp_path: Path, lines: int, threads: int = 1) -> tuple[Any, Path]:
    """A writer to tmp_path/o.bam that has spilled `lines` records into tmp_path/spills."""
    spill_dir = tmp_path / "spills"
    spill_dir.mkdir()
    w = _core.BamWriter(str(tmp_path / "o.bam"), HEADER, memory_bytes=5000, threads=threads,
                        tmp_dir=str(spill_dir))
    w.add_many_sam(LINES[:lines])
    return w, spill_dir


def test_spills_in_tmp_dir(tmp_path: Path) -> None:
    w, spill_dir = spilling_writer(tmp_path, 500)
    assert leftovers(spill_dir), "spills should be in tmp_dir"
    w.close()
    assert leftovers(spill_dir) == [] and leftovers(tmp_path) == []


@pytest.mark.parametrize("threads", [1, 3])
def test_a_failed_spill_fails_the_writer(tmp_path: Path, threads: int) -> None:
    # With threads > 1 spills are written on a thread of their own, beside the adds: a spill
    # that cannot be written still fails the writer (at a later add or at close), and nothing
    # is left at the output path.
    w, spill_dir = spilling_writer(tmp_path, 200, threads)
    # The directory goes away under the writer (moved whole: a spill may be in progress).
    spill_dir.rename(tmp_path / "gone")
    with pytest.raises(RuntimeError, match="spills"):
        w.add_many_sam(LINES[200:])
        w.close()
    with pytest.raises(Exception, match="earlier error|after close"):
        w.add_sam_line(LINES[0])  # records may be lost: the writer takes no more
    w.abort()
    assert not (tmp_path / "o.bam").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("threads", [1, 3])
def test_a_spill_cut_between_records_is_noticed(tmp_path: Path, threads: int) -> None:
    # Spills are raw records back to back (bam1_core_t, uint32 l_data, data): one cut short at
    # a record boundary would read as a shorter run, so the writer counts what it reads back
    # (in one merge, or, with threads, over the key ranges merged side by side).
    w, spill_dir = spilling_writer(tmp_path, 100, threads)  # too few spills to be folded
    spills = leftovers(spill_dir)
    assert len(spills) >= 2
    spill = spill_dir / spills[0]  # the oldest: finished before the next one began
    data = spill.read_bytes()
    core = 48  # sizeof(bam1_core_t)
    first = core + 4 + int.from_bytes(data[core:core + 4], "little")
    assert 0 < first < len(data)
    spill.write_bytes(data[:first])  # the first record only
    with pytest.raises(RuntimeError, match="holds 1 records"):
        w.close()
    assert not (tmp_path / "o.bam").exists() and leftovers(spill_dir) == []


def test_an_index_that_cannot_be_put_in_place_fails_the_run(tmp_path: Path) -> None:
    (tmp_path / "o.bam.bai").mkdir()  # the index cannot be renamed onto a directory
    with pytest.raises(RuntimeError, match="cannot rename"):
        write(tmp_path / "o.bam", LINES[:100])
    assert not (tmp_path / "o.bam").exists() and leftovers(tmp_path) == []


def test_bytes_do_not_depend_on_what_ran_before(tmp_path: Path) -> None:
    # The same records give the same file whatever the thread has compressed before (ISA-L's
    # stream state once picked up stack leftovers: another writer busy on the same thread
    # changed the blocks' bytes, though not their data).
    want = write(tmp_path / "fresh.bam", LINES[:300], threads=1).read_bytes()
    busy = _core.BamWriter(str(tmp_path / "busy.bam"), HEADER, memory_bytes=5000, threads=1)
    busy.add_many_sam(LINES[:200])
    assert write(tmp_path / "beside.bam", LINES[:300], threads=1).read_bytes() == want
    busy.abort()


def test_long_runs_of_equal_keys_merge_the_same_on_threads(tmp_path: Path) -> None:
    # With threads the final merge is cut into ranges at sampled records, inside runs of equal
    # keys too (unmapped reads all share one key; so do piles at one position): the records
    # keep their arrival order within such a run, whatever the threads and the spills.
    rng = random.Random(5)
    lines = []
    for i in range(4000):
        seq = "".join(rng.choice("ACGT") for _ in range(rng.randint(20, 60)))
        if i % 3:
            lines.append(f"u{i}\t4\t*\t0\t0\t*\t*\t0\t0\t{seq}\t{'I' * len(seq)}")
        else:  # a pile at two positions, both strands
            flag, pos = rng.choice([(0, 100), (16, 100), (0, 7_000)])
            lines.append(f"m{i}\t{flag}\tchr2\t{pos}\t60\t{len(seq)}M\t*\t0\t0\t{seq}\t"
                         f"{'I' * len(seq)}")
    one = write(tmp_path / "one.bam", lines, threads=1).read_bytes()
    # ranges of a few records (cut inside the runs of equal keys), and of the automatic size
    for threads, memory, ranges in ((3, 20_000, 1_000), (4, 60_000, 3_000), (2, 64 << 20, 500),
                                    (3, 20_000, 0)):
        got = write(tmp_path / f"t{threads}.bam", lines, threads=threads, memory_bytes=memory,
                    merge_range_bytes=ranges)
        assert got.read_bytes() == one, (threads, memory, ranges)
    names = [r.query_name for r in records(tmp_path / "one.bam")]
    unmapped = [n for n in names if n.startswith("u")]
    assert unmapped == [ln.split("\t")[0] for ln in lines if ln.startswith("u")]
    # Marking duplicates (the piles are copies of each other), and htslib's writer, take the
    # ranges' records in turn on the closing thread.
    for kw in ({"mark_duplicates": True}, {"deflater": "htslib"}):
        want = write(tmp_path / "one-k.bam", lines, threads=1, **kw).read_bytes()
        got = write(tmp_path / "t3-k.bam", lines, threads=3, memory_bytes=20_000,
                    merge_range_bytes=1_000, **kw)
        assert got.read_bytes() == want, kw
    marked = write(tmp_path / "m.bam", lines, threads=3, memory_bytes=20_000,
                   merge_range_bytes=1_000, mark_duplicates=True)
    assert sum(r.is_duplicate for r in records(marked)) > 1000


def test_threads_do_not_change_output(tmp_path: Path) -> None:
    one = write(tmp_path / "t1.bam", LINES, threads=1).read_bytes()
    two = write(tmp_path / "t2.bam", LINES, threads=2, memory_bytes=50_000).read_bytes()
    assert one == two


def test_abort_leaves_nothing(tmp_path: Path) -> None:
    w = _core.BamWriter(str(tmp_path / "a.bam"), HEADER, memory_bytes=5000)
    w.add_many_sam(LINES[:500])
    assert leftovers(tmp_path)  # temporaries exist while writing
    w.abort()
    assert list(tmp_path.iterdir()) == []


def test_exception_in_context_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with _core.BamWriter(str(tmp_path / "x.bam"), HEADER, memory_bytes=5000) as w:
            w.add_many_sam(LINES[:500])
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_unclosed_writer_leaves_nothing(tmp_path: Path) -> None:
    w = _core.BamWriter(str(tmp_path / "u.bam"), HEADER, memory_bytes=5000)
    w.add_many_sam(LINES[:500])
    del w
    assert list(tmp_path.iterdir()) == []


class Alarm(Exception):
    pass


@pytest.mark.parametrize("threads", [1, 3], ids=["one-merge", "range-merges"])
def test_a_signal_stops_the_final_merge(tmp_path: Path, threads: int) -> None:
    """SIGINT or SIGTERM during the final merge (minutes on a whole genome, with no other
    chance for Python to run) stops it at once: its handler runs inside close(), before the
    BAM is in place, and the close leaves nothing. Without the check the handler would only
    run once close() had returned, the BAM already written."""
    lines = [line.replace("\tXI:i:", f"\tXJ:i:{k}\tXI:i:") for k in range(200) for line in LINES]
    out = tmp_path / "o.bam"
    w = _core.BamWriter(str(out), HEADER, memory_bytes=1 << 20, threads=threads,
                        merge_range_bytes=1 << 16)
    w.add_many_sam(lines)
    seen = []

    def handler(signum: int, frame: object) -> None:
        seen.append(out.exists())
        raise Alarm

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.02)
        with pytest.raises(Alarm):
            w.close()  # about 0.3 s uninterrupted
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert seen == [False]
    assert list(tmp_path.iterdir()) == []


def test_old_output_kept_until_success(tmp_path: Path) -> None:
    out = write(tmp_path / "keep.bam", LINES[:10])
    before = out.read_bytes()
    w = _core.BamWriter(str(out), HEADER)
    w.add_many_sam(LINES)
    w.abort()
    assert out.read_bytes() == before
    assert (tmp_path / "keep.bam.bai").exists()


def test_unsorted_keeps_order(tmp_path: Path) -> None:
    out = write(tmp_path / "u.bam", LINES, sort=False)
    with pysam.AlignmentFile(str(out)) as f:
        assert f.header.to_dict()["HD"]["SO"] == "unsorted"
    assert [r.get_tag("XI") for r in records(out)] == list(range(len(LINES)))
    assert not (tmp_path / "u.bam.bai").exists()


def test_header_without_hd_gets_one(tmp_path: Path) -> None:
    header = "".join(f"@SQ\tSN:{n}\tLN:{ln}\n" for n, ln in CONTIGS)
    w = _core.BamWriter(str(tmp_path / "h.bam"), header)
    w.add_many_sam(LINES[:20])
    w.close()
    with pysam.AlignmentFile(str(tmp_path / "h.bam")) as f:
        assert f.header.to_dict()["HD"]["SO"] == "coordinate"


def test_sam_format(tmp_path: Path) -> None:
    out = write(tmp_path / "o.sam", LINES, format="sam")
    text = out.read_text()
    assert text.startswith("@HD\tVN:1.6\tSO:coordinate\n")
    body = [ln for ln in text.splitlines() if not ln.startswith("@")]
    assert Counter(body) == record_keys(LINES)
    assert not (tmp_path / "o.sam.bai").exists()
    assert leftovers(tmp_path) == []


@pytest.fixture(scope="module")
def fasta(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(5)
    return write_fasta(tmp_path_factory.mktemp("ref") / "ref.fa",
                       [(n, "".join(rng.choice("ACGT") for _ in range(ln))) for n, ln in CONTIGS])


def _tags_as_dict(r: pysam.AlignedSegment) -> tuple:
    # (htslib's CRAM reader works MD and NM out from the reference for records that had none;
    # test_align compares the aligner's own MD and NM through CRAM)
    return (r.query_name, r.flag, r.reference_id, r.reference_start, r.cigarstring,
            r.query_sequence, list(r.query_qualities or []),
            {k: v for k, v in r.get_tags() if k not in ("MD", "NM")})


@pytest.mark.parametrize("spill", [False, True])
def test_cram_output_is_the_bams_records_with_a_crai(tmp_path: Path, fasta: Path,
                                                      spill: bool) -> None:
    memory = 3_000 if spill else 64 << 20
    bam = write(tmp_path / "o.bam", LINES, memory_bytes=memory)
    cram = write(tmp_path / "o.cram", LINES, format="cram", reference=str(fasta),
                 memory_bytes=memory, threads=2)
    assert (tmp_path / "o.cram.crai").exists() and not (tmp_path / "o.cram.bai").exists()
    with pysam.AlignmentFile(str(cram), reference_filename=str(fasta)) as f:
        assert f.is_cram
        got = [_tags_as_dict(r) for r in f.fetch(until_eof=True)]
        # the .crai answers region queries as the .bai does
        region = [r.query_name for r in f.fetch("chr2", 1_000, 9_000)]
    assert got == [_tags_as_dict(r) for r in records(bam)]
    with pysam.AlignmentFile(str(bam)) as f:
        assert region == [r.query_name for r in f.fetch("chr2", 1_000, 9_000)] and region
    assert os.path.getsize(cram) < os.path.getsize(bam)
    assert leftovers(tmp_path) == []


def test_unsorted_cram_has_no_index(tmp_path: Path, fasta: Path) -> None:
    cram = write(tmp_path / "u.cram", LINES[:200], format="cram", reference=str(fasta),
                 sort=False)
    assert not (tmp_path / "u.cram.crai").exists()
    with pysam.AlignmentFile(str(cram), reference_filename=str(fasta), check_sq=False) as f:
        assert [r.query_name for r in f.fetch(until_eof=True)] == \
            [ln.split("\t")[0] for ln in LINES[:200]]


def test_csi_for_long_contigs(tmp_path: Path) -> None:
    header = "@SQ\tSN:big\tLN:600000000\n"
    w = _core.BamWriter(str(tmp_path / "big.bam"), header)
    w.add_sam_line("r1\t0\tbig\t550000000\t60\t4M\t*\t0\t0\tACGT\tIIII")
    w.add_sam_line("r2\t0\tbig\t10\t60\t4M\t*\t0\t0\tACGT\tIIII")
    w.close()
    assert (tmp_path / "big.bam.csi").exists() and not (tmp_path / "big.bam.bai").exists()
    with pysam.AlignmentFile(str(tmp_path / "big.bam")) as f:
        assert [r.query_name for r in f.fetch("big", 549_999_990, 550_000_010)] == ["r1"]


def test_unwritable_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="missing_dir"):
        _core.BamWriter(str(tmp_path / "missing_dir" / "o.bam"), HEADER)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(RuntimeError, match="file/o.bam"):
        _core.BamWriter(str(blocker / "o.bam"), HEADER)
    if os.geteuid() != 0:  # root ignores directory permissions
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(RuntimeError, match="ro/o.bam"):
            _core.BamWriter(str(ro / "o.bam"), HEADER)


def test_bad_sam_line_and_bad_format(tmp_path: Path) -> None:
    with _core.BamWriter(str(tmp_path / "b.bam"), HEADER) as w:
        with pytest.raises(ValueError, match="cannot parse SAM line"):
            w.add_sam_line("r1\tnot-a-flag\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\tIIII")
    with pytest.raises(ValueError, match="format"):
        _core.BamWriter(str(tmp_path / "c.bam"), HEADER, format="bcf")
    with pytest.raises(ValueError, match="CRAM output needs the reference FASTA"):
        _core.BamWriter(str(tmp_path / "c.cram"), HEADER, format="cram")
    with pytest.raises(_core.InputError, match="nope.fa: cannot open as the FASTA"):
        _core.BamWriter(str(tmp_path / "c.cram"), HEADER, format="cram",
                        reference=str(tmp_path / "nope.fa"))
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("fmt", ["sam", "bam"])
def test_stdout(tmp_path: Path, fmt: str) -> None:
    # A child process, so that the writer really owns file descriptor 1.
    code = (
        "import sys; from gmsaccel import _core\n"
        "lines = [ln.rstrip('\\n') for ln in sys.stdin]\n"
        f"w = _core.BamWriter('-', {HEADER!r}, format={fmt!r}, memory_bytes=3000)\n"
        "w.add_many_sam(lines)\n"
        "w.close()\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(gmsaccel.__file__).parent.parent))
    proc = subprocess.run(
        [sys.executable, "-c", code],
        input="\n".join(LINES[:500]).encode(),
        capture_output=True,
        cwd=tmp_path,
        env=env,
        check=True,
    )
    assert list(tmp_path.iterdir()) == []  # spills went to the working directory and are gone
    out = tmp_path / f"o.{fmt}"
    out.write_bytes(proc.stdout)
    expected = write(tmp_path / f"ref.{fmt}", LINES[:500], format=fmt)
    assert proc.stdout == expected.read_bytes()


def test_compression_level_and_use_after_close(tmp_path: Path) -> None:
    fast = write(tmp_path / "l0.bam", LINES, compression_level=0)
    best = write(tmp_path / "l9.bam", LINES, compression_level=9)
    assert fast.stat().st_size > best.stat().st_size
    assert sam_lines(fast) == sam_lines(best)
    w = _core.BamWriter(str(tmp_path / "c.bam"), HEADER)
    w.close()
    w.close()  # a second close is harmless
    with pytest.raises(RuntimeError, match="after close"):
        w.add_sam_line(LINES[0])


# ---- ISA-L deflate (bam_deflate.cpp) against htslib's writer -----------------------------------

ISAL = _core.fast_bam_deflate_available()
needs_isal = pytest.mark.skipif(not ISAL, reason="this build has no ISA-L BAM writer")


def inflated(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes())


def samtools_index(bam: Path, csi: bool = False) -> bytes:
    """The index samtools builds by reading the file: the oracle for the one written with it."""
    out = bam.with_name(bam.name + (".check.csi" if csi else ".check.bai"))
    pysam.samtools.index(*(["-c"] if csi else []), str(bam), str(out))
    return out.read_bytes()


def long_lines() -> list[str]:
    """Records from 1 base to more than a BGZF block (0xff00 bytes) long, and runs of records
    that end exactly where a block ends."""
    rng = random.Random(77)
    lines = []
    for i, n in enumerate([1, 70_000, 5, 40_000, 40_000, 3, 130_000] + [rng.randint(1, 400)
                                                                        for _ in range(400)]):
        seq = "".join(rng.choice("ACGT") for _ in range(n))
        pos = rng.randint(1, 40_000 - min(n, 39_000)) if n < 39_000 else 1
        lines.append(f"L{i}\t0\tchr1\t{pos}\t60\t{n}M\t*\t0\t0\t{seq}\t{'I' * n}")
    return lines


@needs_isal
@pytest.mark.parametrize("sort", [True, False])
@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("lines", ["random", "long"])
@pytest.mark.parametrize("memory", [200_000, 64 << 20], ids=["spills", "in-memory"])
def test_isal_and_htslib_write_the_same_bam(tmp_path: Path, sort: bool, threads: int,
                                            lines: str, memory: int) -> None:
    # The ISA-L writer serialises records on its threads from where they lie (the sort buffer,
    # mapped spills) or from copies (unsorted output): either way htslib's bytes.
    recs = LINES if lines == "random" else long_lines()
    kw = {"sort": sort, "threads": threads, "memory_bytes": memory}
    fast = write(tmp_path / "fast.bam", recs, **kw)
    ref = write(tmp_path / "ref.bam", recs, deflater="htslib", **kw)
    with _core.BamWriter(str(tmp_path / "probe.bam"), HEADER, sort=sort) as probe:
        assert probe.deflater == "isa-l"
    pysam.samtools.quickcheck(str(fast))
    assert inflated(fast) == inflated(ref)  # header and records byte for byte
    if sort:
        assert (tmp_path / "fast.bam.bai").read_bytes() == samtools_index(fast)
        with pysam.AlignmentFile(str(fast)) as a, pysam.AlignmentFile(str(ref)) as b:
            for contig, length in CONTIGS:
                for start in range(0, length, 7_919):
                    got = [r.to_string() for r in a.fetch(contig, start, start + 5_000)]
                    assert got == [r.to_string() for r in b.fetch(contig, start, start + 5_000)]
            assert a.nocoordinate == b.nocoordinate and a.mapped == b.mapped


@needs_isal
def test_isal_csi_index_matches_samtools(tmp_path: Path) -> None:
    header = "@SQ\tSN:big\tLN:600000000\n@SQ\tSN:small\tLN:1000\n"
    w = _core.BamWriter(str(tmp_path / "big.bam"), header)
    for i, pos in enumerate([550_000_000, 10, 123_456_789, 599_999_000]):
        w.add_sam_line(f"r{i}\t0\tbig\t{pos}\t60\t4M\t*\t0\t0\tACGT\tIIII")
    w.add_sam_line("u1\t4\t*\t0\t0\t*\t*\t0\t0\tACGT\tIIII")
    assert w.deflater == "isa-l"
    w.close()
    assert (tmp_path / "big.bam.csi").read_bytes() == samtools_index(tmp_path / "big.bam", True)


@needs_isal
def test_level_zero_stays_with_htslib(tmp_path: Path) -> None:
    with _core.BamWriter(str(tmp_path / "l0.bam"), HEADER, compression_level=0) as w:
        assert w.deflater == "htslib"
    with _core.BamWriter(str(tmp_path / "l9.bam"), HEADER, compression_level=9) as w:
        assert w.deflater == "isa-l"
    with _core.BamWriter(str(tmp_path / "x.sam"), HEADER, format="sam") as w:
        assert w.deflater == "htslib"
    with pytest.raises(ValueError, match="deflater must be"):
        _core.BamWriter(str(tmp_path / "y.bam"), HEADER, deflater="zlib")


# --- sorted parts merged at close ------------------------------------------------------------

def merge_parts(out: Path, parts: list[Path], **kw: object) -> _core.BamWriter:
    with _core.BamWriter(str(out), HEADER, **kw) as w:
        for p in parts:
            w.add_sorted_part(str(p))
    return w


@pytest.mark.parametrize("n_parts", [1, 3, 140], ids=["one", "three", "folded"])
def test_parts_merge_to_what_one_writer_writes(tmp_path: Path, n_parts: int) -> None:
    """Consecutive stretches of the records, each written sorted, merge into the BAM of all the
    records written at once: ties keep the part order (140 parts: more than merge at once)."""
    whole = write(tmp_path / "whole.bam", LINES)
    cut = [len(LINES) * i // n_parts for i in range(n_parts + 1)]
    parts = [write(tmp_path / f"p{i}.bam", LINES[a:b], write_index=False)
             for i, (a, b) in enumerate(zip(cut, cut[1:], strict=False))]
    w = merge_parts(tmp_path / "merged.bam", parts, threads=2)
    assert w.records_written == len(LINES)
    assert (tmp_path / "merged.bam").read_bytes() == whole.read_bytes()
    assert leftovers(tmp_path) == []


def test_bad_parts_are_input_errors(tmp_path: Path) -> None:
    good = write(tmp_path / "good.bam", LINES[:100], write_index=False)
    unsorted = write(tmp_path / "unsorted.bam", LINES[:100], sort=False)
    other = tmp_path / "other.bam"
    with _core.BamWriter(str(other), "@SQ\tSN:chr1\tLN:50000\n") as w:
        w.add_sam_line("r\t0\tchr1\t5\t60\t4M\t*\t0\t0\tACGT\tIIII")
    truncated = tmp_path / "truncated.bam"
    truncated.write_bytes(good.read_bytes()[:-2000])
    out = tmp_path / "out.bam"
    cases = [(unsorted, r"unsorted\.bam: record \d+ \(q\d+\) comes before"),
             (other, r"other\.bam: its @SQ lines differ"),
             (truncated, r"truncated\.bam: record \d+ is truncated or corrupt"),
             (tmp_path / "missing.bam", r"missing\.bam: cannot open")]
    for part, message in cases:
        with pytest.raises(_core.InputError, match=message):
            merge_parts(out, [good, part])
        assert not out.exists() and leftovers(tmp_path) == []


def test_parts_and_records_do_not_mix(tmp_path: Path) -> None:
    part = write(tmp_path / "p.bam", LINES[:10])
    w = _core.BamWriter(str(tmp_path / "a.bam"), HEADER)
    w.add_sam_line(LINES[0])
    with pytest.raises(RuntimeError, match="cannot mix"):
        w.add_sorted_part(str(part))
    w.abort()
    with pytest.raises(ValueError, match="sorted"):
        _core.BamWriter(str(tmp_path / "u.bam"), HEADER, sort=False).add_sorted_part(str(part))
