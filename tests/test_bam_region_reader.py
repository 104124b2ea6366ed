"""Region loads of BAM through ISA-L (bam_region_reader.cpp) against the same loads through
htslib: identical counts and statistics on any region, the fallback for records the reader leaves
to htslib, and errors for damaged files."""

from __future__ import annotations

import random
import shutil
import zlib
from pathlib import Path

import numpy as np
import pysam
import pytest
from conftest import random_genome
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gmsaccel import _core

ISAL = _core.fast_bam_inflate_available()
pytestmark = pytest.mark.skipif(not ISAL, reason="this build has no ISA-L inflater")

M, I, D, S = 0, 1, 2, 4  # noqa: E741
ARRAYS = ("base_counts", "base_qual_sums", "deletions", "insertions", "depth")
STATS = ("loaded", "filtered", "depth_capped")
CONTIGS = {"a": 30_000, "b": 12_000, "c": 500}


def _segment(header: pysam.AlignmentHeader, rng: random.Random, i: int, contig: str,
             ref: str) -> pysam.AlignedSegment:
    a = pysam.AlignedSegment(header)
    # Names of every length mod 4, so the padding of names in memory varies.
    a.query_name = f"r{i}" + "x" * rng.randint(0, 7)
    a.reference_name = contig
    kind = rng.random()
    if kind < 0.05:  # unmapped, placed by its mate: no CIGAR
        a.flag = 0x4 | 0x1 | 0x40
        a.reference_start = rng.randint(0, len(ref) - 200)
        a.next_reference_name, a.next_reference_start = contig, a.reference_start
        a.query_sequence = "".join(rng.choices("ACGT", k=100))
        a.query_qualities = pysam.qualitystring_to_array("I" * 100)
        return a
    # Mostly short reads; some long enough to span several BGZF blocks.
    long_read = rng.random() >= 0.97
    length = rng.randint(30_000, 70_000) if long_read else rng.choice([100, 150, 150, 250])
    pos = rng.randint(0, max(0, len(ref) - min(length, len(ref)) - 10))
    cigar, seq, p = [], [], pos
    if rng.random() < 0.2:
        k = rng.randint(1, 10)
        cigar.append((S, k))
        seq.append("".join(rng.choices("ACGT", k=k)))
    while sum(len(s) for s in seq) < length and p < len(ref) - 20:
        m = min(rng.randint(10, 60), len(ref) - p - 10)
        cigar.append((M, m))
        seq.append("".join(b if rng.random() > 0.03 else rng.choice("ACGT")
                           for b in ref[p:p + m]))
        p += m
        ev = rng.random()
        if ev < 0.1:
            k = rng.randint(1, 5)
            cigar.append((I, k))
            seq.append("".join(rng.choices("ACGT", k=k)))
        elif ev < 0.2 and p < len(ref) - 30:
            k = rng.randint(1, 5)
            cigar.append((D, k))
            p += k
    if cigar[-1][0] != M:
        cigar.append((M, 5))
        seq.append(ref[p:p + 5])
    a.flag = rng.choice([0, 16, 0, 16, 0x400, 0x100, 0x1 | 0x2 | 0x40, 0x1 | 0x2 | 0x80 | 16])
    a.reference_start = pos
    a.mapping_quality = rng.randint(0, 60)
    a.cigartuples = cigar
    s = "".join(seq)
    if rng.random() < 0.02:  # SEQ "*"
        a.query_sequence = None
    else:
        a.query_sequence = s
        if rng.random() > 0.05:  # else QUAL "*"
            a.query_qualities = pysam.qualitystring_to_array(
                "".join(chr(33 + rng.randint(2, 40)) for _ in s))
    if a.flag & 0x1:
        a.next_reference_name = contig
        a.next_reference_start = min(len(ref) - 1, pos + rng.randint(-200, 300))
    a.set_tag("XI", i)
    return a


def _random_bam(d: Path, seed: int, contigs: dict[str, int], reads_per_contig) -> Path:
    """Sorted, indexed BAM of _segment reads over a random genome (reads_per_contig(length))."""
    genome = random_genome(seed, contigs)
    header = pysam.AlignmentHeader.from_dict({
        "HD": {"VN": "1.6", "SO": "coordinate"},
        "SQ": [{"SN": n, "LN": len(s)} for n, s in genome]})
    rng = random.Random(seed + 1)
    raw = d / "raw.bam"
    with pysam.AlignmentFile(str(raw), "wb", header=header) as out:
        i = 0
        for name, ref in genome:
            for _ in range(reads_per_contig(len(ref))):
                out.write(_segment(header, rng, i, name, ref))
                i += 1
    bam = d / "reads.bam"
    pysam.sort("-o", str(bam), str(raw))
    pysam.index(str(bam))
    return bam


@pytest.fixture(scope="module")
def varied_bam(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _random_bam(tmp_path_factory.mktemp("region_reader"), 11, CONTIGS,
                       lambda length: length // 10)


def _same_loads(path: Path, contig: str, start: int, end: int, **filters: int) -> dict:
    fast = _core.AlignmentSource(path)
    slow = _core.AlignmentSource(path, fast_inflate=False)
    assert (fast.inflater, slow.inflater) == ("isa-l", "htslib")
    got = fast.pileup(contig, start, end, **filters)
    want = slow.pileup(contig, start, end, **filters)
    for key in ARRAYS:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    assert [got[k] for k in STATS] == [want[k] for k in STATS]
    return got


def test_whole_contigs_match_htslib(varied_bam: Path) -> None:
    for contig, length in CONTIGS.items():
        got = _same_loads(varied_bam, contig, 0, length, max_depth=0)
        assert got["loaded"] > 0 and got["filtered"] > 0


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(contig=st.sampled_from(sorted(CONTIGS)), start=st.integers(-50, 31_000),
       width=st.integers(1, 8000), min_mapq=st.sampled_from([0, 20]),
       max_depth=st.sampled_from([0, 3, 1000]))
def test_random_regions_match_htslib(varied_bam: Path, contig: str, start: int, width: int,
                                     min_mapq: int, max_depth: int) -> None:
    _same_loads(varied_bam, contig, start, start + width, min_mapq=min_mapq, max_depth=max_depth)


def test_candidates_match_htslib(varied_bam: Path) -> None:
    (name, ref), = [g for g in random_genome(11, CONTIGS) if g[0] == "a"]
    codes = _core.encode(ref)
    fast = _core.AlignmentSource(varied_bam)
    slow = _core.AlignmentSource(varied_bam, fast_inflate=False)
    got = fast.candidates(codes, name, 0, len(ref), min_support=1, min_fraction=0.0)
    assert got and got == slow.candidates(codes, name, 0, len(ref), min_support=1,
                                          min_fraction=0.0)


def test_who_inflates(varied_bam: Path, tmp_path: Path) -> None:
    assert _core.AlignmentSource(varied_bam, threads=2).inflater == "isa-l"
    # More decompression threads: htslib's pool inflates in parallel.
    assert _core.AlignmentSource(varied_bam, threads=4).inflater == "htslib"
    plain = tmp_path / "level0.bam"  # still BGZF, stored blocks
    pysam.view("-b", "-u", "-o", str(plain), str(varied_bam), catch_stdout=False)
    pysam.index(str(plain))
    assert _core.AlignmentSource(plain).inflater == "isa-l"
    _same_loads(plain, "a", 0, CONTIGS["a"])


def test_long_cigar_in_cg_tag_falls_back_to_htslib(tmp_path: Path) -> None:
    # Over 65535 CIGAR operations: BAM keeps them in a CG tag behind a placeholder CIGAR, which
    # this reader leaves to htslib (the region is reloaded through it).
    (name, ref), = random_genome(3, {"g": 200_000})
    header = pysam.AlignmentHeader.from_dict({"HD": {"VN": "1.6", "SO": "coordinate"},
                                              "SQ": [{"SN": name, "LN": len(ref)}]})
    bam = tmp_path / "cg.bam"
    with pysam.AlignmentFile(str(bam), "wb", header=header) as out:
        for i, pos in enumerate([100, 500]):
            a = pysam.AlignedSegment(header)
            a.query_name, a.reference_name, a.reference_start = f"s{i}", name, pos
            a.mapping_quality, a.cigartuples = 60, [(M, 150)]
            a.query_sequence = ref[pos:pos + 150]
            a.query_qualities = pysam.qualitystring_to_array("I" * 150)
            out.write(a)
        long = pysam.AlignedSegment(header)
        long.query_name, long.reference_name, long.reference_start = "long", name, 1000
        long.mapping_quality = 60
        long.cigartuples = [(M, 1), (D, 1)] * 35_000 + [(M, 1)]
        long.query_sequence = "".join(ref[1000 + 2 * k] for k in range(35_001))
        long.query_qualities = pysam.qualitystring_to_array("I" * 35_001)
        out.write(long)
    pysam.index(str(bam))
    with pysam.AlignmentFile(str(bam)) as f:  # the file really holds a CG tag
        assert any(r.query_name == "long" and len(r.cigartuples) == 70_001 for r in f)
    got = _same_loads(bam, name, 0, 80_000)
    assert got["loaded"] == 3
    assert int(got["deletions"].sum()) == 35_000


def _corrupt_copy(bam: Path, tmp_path: Path, name: str, damage) -> Path:
    bad = tmp_path / name
    data = bytearray(bam.read_bytes())
    damage(data)
    bad.write_bytes(bytes(data))
    shutil.copy(str(bam) + ".bai", str(bad) + ".bai")
    return bad


def test_damaged_blocks_are_errors(varied_bam: Path, tmp_path: Path) -> None:
    size = varied_bam.stat().st_size

    def flip(data: bytearray) -> None:
        for at in range(size // 3, size // 3 + 4000, 97):  # inside some block's deflate data
            data[at] ^= 0x5A

    def truncate(data: bytearray) -> None:
        del data[size // 2:]

    for name, damage in (("flipped.bam", flip), ("truncated.bam", truncate)):
        bad = _corrupt_copy(varied_bam, tmp_path, name, damage)
        for fast in (True, False):
            src = _core.AlignmentSource(bad, fast_inflate=fast)
            with pytest.raises(_core.InputError, match=rf"{name}: corrupt or truncated record"):
                for contig, length in CONTIGS.items():
                    src.pileup(contig, 0, length)
        with pytest.raises(_core.InputError, match=r"\((BGZF block at offset \d+|the file ends)"):
            src = _core.AlignmentSource(bad)
            for contig, length in CONTIGS.items():
                src.pileup(contig, 0, length)


@pytest.fixture(scope="module")
def small_bam(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few BGZF blocks of short reads: small enough to damage thousands of ways."""
    return _random_bam(tmp_path_factory.mktemp("fuzz"), 17, {"f": 6000}, lambda _: 600)


def _load_all(path: Path, fast: bool) -> dict | None:
    """The whole contig's counts, or None when the file is rejected (InputError)."""
    try:
        return _core.AlignmentSource(path, fast_inflate=fast).pileup("f", 0, 6000, max_depth=0)
    except _core.InputError:
        return None


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_files_never_give_silent_differences(small_bam: Path, tmp_path: Path,
                                                     data: st.DataObject) -> None:
    # Any damage: the reader rejects the file with InputError, or reads exactly what htslib
    # reads from it; it never crashes and never returns reads htslib would not.
    original = small_bam.read_bytes()
    damaged = bytearray(original)
    kind = data.draw(st.sampled_from(["flip", "truncate", "zero"]))
    at = data.draw(st.integers(0, len(original) - 1))
    if kind == "flip":
        damaged[at] ^= data.draw(st.integers(1, 255))
    elif kind == "truncate":
        del damaged[at:]
    else:
        n = data.draw(st.integers(1, 64))
        damaged[at:at + n] = bytes(len(damaged[at:at + n]))
    bad = tmp_path / f"d{at}.bam"
    bad.write_bytes(bytes(damaged))
    shutil.copy(str(small_bam) + ".bai", str(bad) + ".bai")
    try:
        _core.AlignmentSource(bad)
    except _core.InputError:
        return  # the header itself is unreadable: rejected before any region is read
    got = _load_all(bad, fast=True)
    if got is None:
        return
    want = _load_all(bad, fast=False)
    assert want is not None, "the ISA-L reader accepted a file htslib rejects"
    for key in ARRAYS:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    assert [got[k] for k in STATS] == [want[k] for k in STATS]


def _stored_bam_with(tmp_path: Path, name: str, damage) -> Path:
    """A BAM written with stored (level 0) BGZF blocks and indexed, then one record changed in
    place and its block's CRC recomputed: the damage reaches the record decoder, and the blocks
    keep their sizes, so the index still fits."""
    (ref_name, ref), = random_genome(23, {"t": 5000})
    header = pysam.AlignmentHeader.from_dict({
        "HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": ref_name, "LN": len(ref)}]})
    good = tmp_path / "stored.bam"
    with pysam.AlignmentFile(str(good), "wb0", header=header) as out:
        for i in range(100):
            a = pysam.AlignedSegment(header)
            a.query_name, a.reference_name, a.reference_start = f"r{i:02d}", ref_name, 40 * i
            a.mapping_quality, a.cigartuples = 60, [(M, 100)]
            a.query_sequence = ref[40 * i:40 * i + 100]
            a.query_qualities = pysam.qualitystring_to_array("I" * 100)
            out.write(a)
    pysam.index(str(good))
    data = bytearray(good.read_bytes())
    at = 0
    while at < len(data):
        bsize = int.from_bytes(data[at + 16:at + 18], "little") + 1
        raw = zlib.decompress(bytes(data[at + 18:at + bsize - 8]), -15)
        changed = damage(bytearray(raw))
        if changed is not None:
            packer = zlib.compressobj(0, zlib.DEFLATED, -15)
            packed = packer.compress(bytes(changed)) + packer.flush()
            assert len(packed) == bsize - 26, "stored blocks changed size"
            data[at + 18:at + bsize - 8] = packed
            data[at + bsize - 8:at + bsize - 4] = zlib.crc32(changed).to_bytes(4, "little")
            break
        at += bsize
    else:
        raise AssertionError("nothing damaged")
    bad = tmp_path / name
    bad.write_bytes(bytes(data))
    shutil.copy(str(good) + ".bai", str(bad) + ".bai")
    return bad


@pytest.mark.parametrize("field", [4, 24], ids=["tid", "mtid"])
def test_reference_ids_outside_the_header_are_errors(tmp_path: Path, field: int) -> None:
    # htslib rejects a record whose reference id (or its mate's) is not in the header; so must
    # this reader, instead of ending the region early or taking the record.
    def damage(raw: bytearray) -> bytearray | None:
        name = raw.find(b"r61\x00")
        if name < 0:
            return None
        start = name - 36  # block_size, then refID at +4 ... next_refID at +24, read_name at +36
        raw[start + field:start + field + 4] = (7).to_bytes(4, "little")
        return raw

    bad = _stored_bam_with(tmp_path, "badid.bam", damage)
    for fast in (True, False):
        src = _core.AlignmentSource(bad, fast_inflate=fast)
        with pytest.raises(_core.InputError, match=r"badid\.bam: corrupt or truncated record"):
            src.pileup("t", 0, 5000)
    with pytest.raises(_core.InputError, match=r"reference id 7 is not in the header"):
        _core.AlignmentSource(bad).pileup("t", 0, 5000)
