"""Index stage: minimizers against a naive definition, FASTA parsing, fetch, lookup, .gxi files."""

from __future__ import annotations

import gzip
import hashlib
import random
import signal
import struct
import time
from pathlib import Path

import numpy as np
import pysam
import pytest
from conftest import expected_bucket_bits, table_contents
from hypothesis import given, settings
from hypothesis import strategies as st

from gmsaccel import InputError, _core

N_CODE = 4
OFF_CODE = 5

# ----------------------------------------------------------------------------------------------
# Naive reference definitions (deliberately simple and slow).

_MASK64 = (1 << 64) - 1


def kmer_hash(x: int, k: int) -> int:
    """The invertible 2k-bit hash of csrc/minimizer.cpp, spelled out."""
    bits = 2 * k
    mask = (1 << bits) - 1
    s1, s2 = (bits + 1) // 2, (bits + 2) // 3
    x = (((x ^ 0x9E3779B97F4A7C15) * 0xBF58476D1CE4E5B9) & _MASK64) & mask
    x ^= x >> s1
    x = (x * 0x94D049BB133111EB) & mask
    x ^= x >> s2
    return (x * 0xD6E8FEB86659FD93) & mask


def canonical(kmer: list[int]) -> tuple[int, int] | None:
    """(encoding, rev) of the canonical form of a k-mer; None for N-containing or palindromes."""
    if any(c >= 4 for c in kmer):
        return None
    fwd = 0
    for c in kmer:
        fwd = (fwd << 2) | c
    rc = 0
    for c in reversed(kmer):
        rc = (rc << 2) | (3 - c)
    if fwd == rc:
        return None
    return (rc, 1) if rc < fwd else (fwd, 0)


def naive_minimizers(codes: list[int], k: int, w: int) -> list[tuple[int, int, int]]:
    """Smallest hash per window of w k-mers (leftmost on ties); fewer than w k-mers: one window."""
    n_kmers = len(codes) - k + 1
    if n_kmers <= 0:
        return []
    cands: list[tuple[int, int] | None] = []
    for p in range(n_kmers):
        c = canonical(codes[p : p + k])
        cands.append(None if c is None else (kmer_hash(c[0], k), c[1]))
    if n_kmers < w:
        windows = [range(n_kmers)]
    else:
        windows = [range(i, i + w) for i in range(n_kmers - w + 1)]
    chosen: dict[int, tuple[int, int, int]] = {}
    for win in windows:
        best: tuple[int, int, int] | None = None
        for p in win:
            c = cands[p]
            if c is not None and (best is None or c[0] < best[0]):
                best = (c[0], p, c[1])
        if best is not None:
            chosen[best[1]] = best
    return [chosen[p] for p in sorted(chosen)]


def as_tuples(mins: np.ndarray) -> list[tuple[int, int, int]]:
    return [
        (int(h), int(p), int(r))
        for h, p, r in zip(mins["hash"], mins["pos"], mins["rev"], strict=True)
    ]


# ----------------------------------------------------------------------------------------------
# Minimizers


@st.composite
def code_seqs(draw: st.DrawFn) -> list[int]:
    alphabet = draw(
        st.sampled_from([[0, 1], [0, 1, 2, 3], [0, 1, 2, 3, 4], [0, 1, 2, 3, 0, 1, 2, 3, 4, 4]])
    )
    return draw(st.lists(st.sampled_from(alphabet), max_size=400))


@settings(max_examples=300, deadline=None)
@given(seq=code_seqs(), k=st.integers(1, 28), w=st.integers(1, 20))
def test_minimizers_match_naive(seq: list[int], k: int, w: int) -> None:
    codes = np.array(seq, dtype=np.uint8)
    got = as_tuples(_core.minimizers(codes, k, w))
    assert got == naive_minimizers(seq, k, w)
    assert as_tuples(_core.minimizers(codes.tobytes(), k, w)) == got


def test_minimizer_fields_and_strands() -> None:
    rng = random.Random(7)
    seq = "".join(rng.choice("ACGT") for _ in range(500))
    codes = _core.encode(seq)
    fwd = _core.minimizers(codes, 15, 10)
    assert fwd.dtype.names == ("hash", "pos", "rev")
    assert np.all(np.diff(fwd["pos"].astype(np.int64)) > 0)
    # The reverse complement has the same minimizer hashes with opposite strand flags.
    rc = _core.encode(seq[::-1].translate(str.maketrans("ACGT", "TGCA")))
    back = _core.minimizers(rc, 15, 10)
    by_hash = {int(h): int(r) for h, r in zip(back["hash"], back["rev"], strict=True)}
    shared = [
        (int(h), int(r)) for h, r in zip(fwd["hash"], fwd["rev"], strict=True) if int(h) in by_hash
    ]
    assert len(shared) > 0.8 * len(fwd)
    assert all(by_hash[h] == 1 - r for h, r in shared)


def test_minimizer_window_longer_than_sequence() -> None:
    seq = [0, 1, 2, 3, 3, 1, 0, 2, 2, 1, 4, 0, 1, 3, 3]
    got = as_tuples(_core.minimizers(np.array(seq, dtype=np.uint8), 4, 1_000_000_000))
    assert got == naive_minimizers(seq, 4, 10**6) and len(got) == 1


def test_minimizer_bad_params() -> None:
    with pytest.raises(ValueError):
        _core.minimizers(b"\x00\x01", 29, 5)
    with pytest.raises(ValueError):
        _core.minimizers(b"\x00\x01", 5, 0)


def test_encode() -> None:
    assert _core.encode("ACGTacgtUuNnRY*-").tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 3, 3] + [4] * 6
    assert _core.encode(b"GATTACA").tolist() == [2, 0, 3, 3, 0, 1, 0]


# ----------------------------------------------------------------------------------------------
# A small reference with the awkward parts of real FASTA files.

IUPAC = "RYKMSWBDHVN"


def random_contig(rng: random.Random, length: int) -> str:
    seq = [rng.choice("ACGT") for _ in range(length)]
    for _ in range(rng.randint(0, 3)):  # N runs
        start, run = rng.randrange(length), rng.randint(1, 60)
        seq[start : start + run] = ["N"] * len(seq[start : start + run])
    for _ in range(rng.randint(0, 5)):  # isolated ambiguity codes
        seq[rng.randrange(length)] = rng.choice(IUPAC)
    for _ in range(rng.randint(0, 3)):  # soft-masked stretches
        start, run = rng.randrange(length), rng.randint(1, 200)
        for i in range(start, min(length, start + run)):
            seq[i] = seq[i].lower()
    return "".join(seq)


def make_reference(seed: int = 1) -> dict[str, str]:
    rng = random.Random(seed)
    contigs = {f"ctg{i}": random_contig(rng, rng.randint(1, 3000)) for i in range(6)}
    unit = "".join(rng.choice("ACGT") for _ in range(45))
    contigs["repeats"] = unit * 30 + "ACGT"  # minimizers occurring 30 times, for filtering
    contigs["tiny"] = "a"
    return contigs


def write_fasta(path: Path, contigs: dict[str, str]) -> Path:
    rng = random.Random(3)
    lines: list[str] = []
    for name, seq in contigs.items():
        lines.append(f">{name} some description\tmore")
        width = rng.choice([60, 70, 80, 13])
        eol = rng.choice(["", "\r"])
        for i in range(0, len(seq), width):
            lines.append(seq[i : i + width] + eol)
        if rng.random() < 0.3:
            lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


K, W, MAX_OCC = 15, 7, 20


@pytest.fixture(scope="module")
def reference() -> dict[str, str]:
    return make_reference()


@pytest.fixture(scope="module")
def fasta(tmp_path_factory: pytest.TempPathFactory, reference: dict[str, str]) -> Path:
    return write_fasta(tmp_path_factory.mktemp("ref") / "ref.fa", reference)


@pytest.fixture(scope="module")
def index(fasta: Path) -> _core.Index:
    return _core.Index.build(str(fasta), k=K, w=W, max_occ=MAX_OCC)


def expected_table(idx: _core.Index) -> dict[int, list[int]]:
    """hash -> sorted (global_pos << 1 | rev), from minimizers of each fetched contig."""
    table: dict[int, list[int]] = {}
    for ci, ((_, length, _), off) in enumerate(zip(idx.contigs, idx.offsets, strict=True)):
        mins = _core.minimizers(idx.fetch(ci, 0, length), idx.k, idx.w)
        for h, p, r in as_tuples(mins):
            table.setdefault(h, []).append(((off + p) << 1) | r)
    return {h: sorted(v) for h, v in table.items()}


def test_contigs_and_md5(index: _core.Index, reference: dict[str, str]) -> None:
    assert [c[0] for c in index.contigs] == list(reference)
    assert index.total_length == sum(len(s) for s in reference.values())
    assert (index.k, index.w, index.max_occ) == (K, W, MAX_OCC)
    for (name, length, md5), seq in zip(index.contigs, reference.values(), strict=True):
        assert length == len(seq), name
        assert md5 == hashlib.md5(seq.upper().encode()).hexdigest(), name


def test_fetch(index: _core.Index, reference: dict[str, str]) -> None:
    rng = random.Random(11)
    for ci, (name, seq) in enumerate(reference.items()):
        codes = _core.encode(seq).tolist()
        pad = [OFF_CODE] * 7
        assert index.fetch(ci, -7, len(seq) + 7).tolist() == pad + codes + pad
        assert index.fetch(name, 0, len(seq)).tolist() == codes
        assert index.fetch(ci, len(seq) + 3, len(seq) + 9).tolist() == [OFF_CODE] * 6
        assert index.fetch(ci, -9, -2).tolist() == [OFF_CODE] * 7
        assert index.fetch(ci, 5, 5).tolist() == []
        for _ in range(20):
            a = rng.randint(-5, len(seq) + 5)
            b = rng.randint(a, len(seq) + 10)
            want = [codes[i] if 0 <= i < len(seq) else OFF_CODE for i in range(a, b)]
            assert index.fetch(ci, a, b).tolist() == want
    with pytest.raises(KeyError):
        index.fetch("nope", 0, 1)
    with pytest.raises(IndexError):
        index.fetch(len(reference), 0, 1)


def test_contig_of(index: _core.Index) -> None:
    for ci, ((_, length, _), off) in enumerate(zip(index.contigs, index.offsets, strict=True)):
        assert index.contig_of(off) == ci
        assert index.contig_of(off + length - 1) == ci
    assert index.contig_of(index.total_length) == -1


def test_lookup_matches_reference(index: _core.Index) -> None:
    table = expected_table(index)
    assert table
    filtered = {h for h, v in table.items() if len(v) > MAX_OCC}
    assert filtered, "the repeat contig should produce filtered minimizers"
    stats = index.stats
    assert stats["n_filtered"] == len(filtered)
    assert stats["n_minimizers"] == len(table) - len(filtered)
    assert stats["n_positions"] == sum(len(v) for h, v in table.items() if h not in filtered)
    for h, values in table.items():
        assert index.occurrences(h) == len(values)
        got = index.lookup(h)
        assert got.dtype == np.uint64
        assert got.tolist() == ([] if h in filtered else values)


@pytest.mark.parametrize("k, w", [(K, W), (16, 5), (24, 10), (28, 4)])
def test_table_arrays_hold_the_indexed_minimizers(fasta: Path, k: int, w: int) -> None:
    """The table read from its arrays alone is the reference's minimizers seen at most MAX_OCC
    times; from k = 17 the buckets take the hash bits above the keys' 32 (k = 24: exactly 32)."""
    idx = _core.Index.build(str(fasta), k=k, w=w, max_occ=MAX_OCC)
    t = idx.table_arrays()
    assert len(t["buckets"]) - 1 == 1 << expected_bucket_bits(k, len(t["keys"]))
    assert t["bucket_shift"] <= 32
    want = {h: v for h, v in expected_table(idx).items() if len(v) <= MAX_OCC}
    assert table_contents(t) == want
    assert idx.stats["n_minimizers"] == len(want)


@pytest.mark.parametrize("k, w", [(K, W), (24, 10), (28, 4), (4, 2), (3, 1)])
@pytest.mark.parametrize("threads", [1, 3])
def test_minimizer_order_is_one_whatever_the_sort(fasta: Path, k: int, w: int,
                                                  threads: int) -> None:
    """The minimizers are ordered by an in-place partition on the hash's bytes, then sorts of
    small parts, on threads: partitioned all the way down (small_part 1) or part way, on 1 or
    3 threads, the table is the one a single sort gives, and the reference's minimizers. (k = 4:
    one byte of hash; k = 3: less than one, a single sort.)"""
    limits = _core.index_limits()

    def build(small: int, n: int) -> dict:
        return _core.Index._build_with_limits(str(fasta), k, w, MAX_OCC, limits["max_bases"],
                                              limits["max_positions"], threads=n,
                                              small_part=small).table_arrays()

    whole = build(10**12, 1)
    for small in (1, 7, 300):
        got = build(small, threads)
        assert got.keys() == whole.keys()
        for name, value in whole.items():
            if name != "id":  # (each index object's own)
                assert np.array_equal(got[name], value), (small, name)
    idx = _core.Index.build(str(fasta), k=k, w=w, max_occ=MAX_OCC)
    want = {h: v for h, v in expected_table(idx).items() if len(v) <= MAX_OCC}
    assert table_contents(whole) == want


def test_lookup_values_point_at_their_kmer(index: _core.Index) -> None:
    """Independent of compute_minimizers: re-hash the k-mer each stored value points at."""
    table = expected_table(index)
    for h in list(table)[:3000]:
        for v in index.lookup(h).tolist():
            gpos, rev = v >> 1, v & 1
            ci = index.contig_of(gpos)
            local = gpos - index.offsets[ci]
            c = canonical(index.fetch(ci, local, local + index.k).tolist())
            assert c is not None
            assert (kmer_hash(c[0], index.k), c[1]) == (h, rev)


def test_lookup_absent(index: _core.Index) -> None:
    table = expected_table(index)
    rng = random.Random(5)
    for _ in range(2000):
        h = rng.randrange(1 << (2 * K))
        if h not in table:
            assert index.lookup(h).size == 0
            assert index.occurrences(h) == 0
    assert index.lookup(1 << 63).size == 0  # beyond the 2k-bit hash range


def test_filtered_minimizers_keep_their_counts(index: _core.Index, tmp_path: Path) -> None:
    """Hashes over max_occ leave the table but occurrences() still counts them, saved and loaded."""
    filtered = {h: len(v) for h, v in expected_table(index).items() if len(v) > MAX_OCC}
    assert filtered
    path = tmp_path / "ref.gxi"
    index.save(str(path))
    loaded = _core.Index.load(path)
    for idx in (index, loaded):
        in_table = table_contents(idx.table_arrays())
        for h, count in filtered.items():
            assert h not in in_table and idx.lookup(h).size == 0
            assert idx.occurrences(h) == count
        assert idx.stats["n_filtered"] == len(filtered)


def test_save_load_round_trip(index: _core.Index, tmp_path: Path) -> None:
    path = tmp_path / "ref.gxi"
    index.save(str(path))
    assert not list(tmp_path.glob("*.tmp-*"))
    loaded = _core.Index.load(path)
    assert loaded.contigs == index.contigs
    assert loaded.offsets == index.offsets
    assert (loaded.k, loaded.w, loaded.max_occ) == (index.k, index.w, index.max_occ)
    assert loaded.total_length == index.total_length
    for key in ("n_minimizers", "n_positions", "n_filtered", "build_seconds"):
        assert loaded.stats[key] == index.stats[key]
    assert loaded.stats["file_bytes"] == path.stat().st_size == index.stats["file_bytes"]
    for h in expected_table(index):
        assert loaded.lookup(h).tolist() == index.lookup(h).tolist()
        assert loaded.occurrences(h) == index.occurrences(h)
    for ci, (_, length, _) in enumerate(index.contigs):
        assert loaded.fetch(ci, -3, length + 3).tolist() == index.fetch(ci, -3, length + 3).tolist()
    index.save(str(path))  # overwriting an existing (even mapped) index is fine
    assert _core.Index.load(str(path)).contigs == index.contigs


@pytest.mark.parametrize("kind", ["gzip", "bgzf"])
def test_compressed_input(
    kind: str, index: _core.Index, fasta: Path, reference: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "ref.fa.gz"
    if kind == "gzip":
        path.write_bytes(gzip.compress(fasta.read_bytes()))
    else:
        pysam.tabix_compress(str(fasta), str(path), force=True)
    idx = _core.Index.build(str(path), k=K, w=W, max_occ=MAX_OCC)
    assert idx.contigs == index.contigs
    assert idx.stats["n_positions"] == index.stats["n_positions"]
    for h in list(expected_table(index))[:500]:
        assert idx.lookup(h).tolist() == index.lookup(h).tolist()


def test_index_limits_are_32_bit() -> None:
    assert _core.index_limits() == {"max_bases": 2**32 - 1, "max_positions": 2**32 - 1}


def test_reference_too_long_for_the_index(fasta: Path, reference: dict[str, str]) -> None:
    """The build's own check, reached with a lower limit than the 32-bit one (internal hook)."""
    total = sum(len(s) for s in reference.values())
    big = 2**64 - 1  # capped at the 32-bit limits
    idx = _core.Index._build_with_limits(fasta, K, W, MAX_OCC, total, big)
    assert idx.total_length == total
    with pytest.raises(InputError) as err:
        _core.Index._build_with_limits(fasta, K, W, MAX_OCC, total - 1, big)
    msg = str(err.value)
    last = len(reference)  # the one-base last record takes the reference past the limit
    assert str(fasta) in msg and f"record {last} (tiny)" in msg and "32-bit" in msg
    assert f"passes {total - 1} bases" in msg


def test_too_many_positions_for_the_index(fasta: Path, index: _core.Index) -> None:
    n = index.stats["n_positions"]
    big = 2**64 - 1
    assert _core.Index._build_with_limits(fasta, K, W, MAX_OCC, big, n).stats["n_positions"] == n
    with pytest.raises(InputError) as err:
        _core.Index._build_with_limits(fasta, K, W, MAX_OCC, big, n - 1)
    msg = str(err.value)
    assert str(fasta) in msg and f"{n} minimizer positions" in msg and "32-bit" in msg


def test_minimal_and_odd_fasta(tmp_path: Path) -> None:
    path = tmp_path / "odd.fa"
    path.write_bytes(b"\n\n>one\r\nAC GT\tNN\r\n\n>two desc\nRYacgt*-\n")
    idx = _core.Index.build(path, k=3, w=2)
    assert [(n, ln) for n, ln, _ in idx.contigs] == [("one", 6), ("two", 8)]
    assert idx.fetch("one", 0, 6).tolist() == [0, 1, 2, 3, 4, 4]
    assert idx.fetch("two", 0, 8).tolist() == [4, 4, 0, 1, 2, 3, 4, 4]
    assert idx.contigs[1][2] == hashlib.md5(b"RYACGT*-").hexdigest()


# ----------------------------------------------------------------------------------------------
# Errors


def build_error(path: Path) -> str:
    with pytest.raises(InputError) as err:
        _core.Index.build(str(path), k=K, w=W)
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg
    return msg


def test_error_is_value_error() -> None:
    assert issubclass(InputError, ValueError)


def test_missing_fasta(tmp_path: Path) -> None:
    build_error(tmp_path / "absent.fa")


def test_not_fasta(tmp_path: Path) -> None:
    path = tmp_path / "reads.fq"
    path.write_text("@read1\nACGT\n+\nIIII\n")
    assert "not FASTA" in build_error(path)


def test_duplicate_names(tmp_path: Path) -> None:
    path = tmp_path / "dup.fa"
    path.write_text(">a\nACGT\n>b x\nACGT\n>a\nGGGG\n")
    msg = build_error(path)
    assert "record 3 (a)" in msg and "duplicate" in msg


@pytest.mark.parametrize("text", [">a\nACGT\n>b\n>c\nAC\n", ">a\nACGT\n>b\n\n"])
def test_empty_contig(tmp_path: Path, text: str) -> None:
    path = tmp_path / "empty.fa"
    path.write_text(text)
    msg = build_error(path)
    assert "record 2 (b)" in msg and "empty" in msg


def test_no_contigs(tmp_path: Path) -> None:
    path = tmp_path / "none.fa"
    path.write_text("\n\n")
    assert "no contigs" in build_error(path)


def test_invalid_character(tmp_path: Path) -> None:
    path = tmp_path / "bad.fa"
    path.write_text(">a\nACGT\n>b\nAC1T\n")
    msg = build_error(path)
    assert "record 2 (b)" in msg and "line 4" in msg and "'1'" in msg


@pytest.mark.parametrize("kind", ["gzip", "bgzf"])
def test_truncated_gzip(tmp_path: Path, kind: str) -> None:
    rng = random.Random(2)  # large enough for several BGZF blocks
    big = {f"c{i}": "".join(rng.choices("ACGT", k=100_000)) for i in range(4)}
    plain = write_fasta(tmp_path / "full.fa", big)
    full = tmp_path / "full.fa.gz"
    if kind == "gzip":
        full.write_bytes(gzip.compress(plain.read_bytes()))
    else:
        pysam.tabix_compress(str(plain), str(full), force=True)
    data = full.read_bytes()
    path = tmp_path / "cut.fa.gz"
    path.write_bytes(data[: len(data) // 2])
    msg = build_error(path)
    assert "truncated" in msg
    if kind == "bgzf":  # read block by block, so the failure falls inside a named record
        assert "record" in msg


def load_error(path: Path) -> str:
    with pytest.raises(InputError) as err:
        _core.Index.load(str(path))
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg
    return msg


def test_load_missing(tmp_path: Path) -> None:
    load_error(tmp_path / "absent.gxi")


def test_load_not_an_index(tmp_path: Path, fasta: Path) -> None:
    assert "not a gmsaccel index" in load_error(fasta)
    empty = tmp_path / "empty.gxi"
    empty.write_bytes(b"")
    assert "not a gmsaccel index" in load_error(empty)


def test_load_truncated_and_wrong_version(tmp_path: Path, index: _core.Index) -> None:
    path = tmp_path / "ref.gxi"
    index.save(str(path))
    data = path.read_bytes()
    for cut in (12, 100, len(data) // 2, len(data) - 8):
        bad = tmp_path / f"cut{cut}.gxi"
        bad.write_bytes(data[:cut])
        assert "truncated" in load_error(bad)
    old = tmp_path / "old.gxi"
    old.write_bytes(data[:8] + (999).to_bytes(4, "little") + data[12:])
    assert "version" in load_error(old)
    # Version 1 (u64 keys, offsets and positions) is refused before anything else is read.
    v1 = tmp_path / "v1.gxi"
    v1.write_bytes(data[:8] + (1).to_bytes(4, "little") + data[12:])
    assert "index format version 1 but this gmsaccel reads 2; rebuild the index" in load_error(v1)


# FileHeader (csrc/index.cpp): its fields, their formats and byte offsets.
HEADER_LAYOUT = [
    ("magic", "8s"), ("version", "I"), ("header_bytes", "I"), ("byte_order", "Q"), ("k", "i"),
    ("w", "i"), ("max_occ", "I"), ("bucket_bits", "I"), ("n_contigs", "Q"),
    ("total_length", "Q"), ("n_nintervals", "Q"), ("n_keys", "Q"), ("n_positions", "Q"),
    ("n_filtered", "Q"), ("build_seconds", "d"), ("contigs_bytes", "Q"), ("file_bytes", "Q"),
]  # fmt: skip
HEADER = struct.Struct("<" + "".join(code for _, code in HEADER_LAYOUT))
HEADER_FIELDS = [name for name, _ in HEADER_LAYOUT]
FIELD_AT = {
    name: struct.calcsize("<" + "".join(code for _, code in HEADER_LAYOUT[:i]))
    for i, (name, _) in enumerate(HEADER_LAYOUT)
}


def sections(data: bytes) -> tuple[dict, dict[str, tuple[int, int]]]:
    """The header and each section's (offset, bytes), as the comment in csrc/index.cpp lays out
    the file."""
    h = dict(zip(HEADER_FIELDS, HEADER.unpack_from(data), strict=True))

    def align8(n: int) -> int:
        return (n + 7) // 8 * 8

    sizes = {
        "contigs": align8(h["contigs_bytes"]),
        "packed": (h["total_length"] + 31) // 32 * 8,
        "nint": h["n_nintervals"] * 16,
        "keys": align8(h["n_keys"] * 4),
        "offs": align8((h["n_keys"] + 1) * 4),
        "buckets": align8(((1 << h["bucket_bits"]) + 1) * 4),
        "positions": align8(h["n_positions"] * 4),
        "rev_bits": (h["n_positions"] + 63) // 64 * 8,
        "filtered_hashes": h["n_filtered"] * 8,
        "filtered_counts": align8(h["n_filtered"] * 4),
    }
    at, out = HEADER.size, {}
    for name, size in sizes.items():
        out[name] = (at, size)
        at += size
    assert at == h["file_bytes"] == len(data)
    return h, out


def test_file_layout_is_the_documented_one(tmp_path: Path, index: _core.Index) -> None:
    path = tmp_path / "ref.gxi"
    index.save(str(path))
    data = path.read_bytes()
    h, at = sections(data)
    t = index.table_arrays()
    for name in ("keys", "offs", "buckets", "positions", "rev_bits"):
        off, _ = at[name]
        arr = np.frombuffer(data, dtype=t[name].dtype, count=len(t[name]), offset=off)
        assert np.array_equal(arr, t[name]), name
    n = h["n_filtered"]
    hashes = np.frombuffer(data, np.uint64, n, at["filtered_hashes"][0]).tolist()
    counts = np.frombuffer(data, np.uint32, n, at["filtered_counts"][0]).tolist()
    table = expected_table(index)
    assert hashes == sorted(h for h, v in table.items() if len(v) > MAX_OCC)
    assert counts == [len(table[h]) for h in hashes]


def patched(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value) :]


def test_load_corrupt_sections(tmp_path: Path, index: _core.Index, fasta: Path) -> None:
    path = tmp_path / "ref.gxi"
    index.save(str(path))
    data = path.read_bytes()
    h, at = sections(data)

    def error(blob: bytes, name: str) -> str:
        bad = tmp_path / f"{name}.gxi"
        bad.write_bytes(blob)
        return load_error(bad)

    u32, u64 = struct.Struct("<I"), struct.Struct("<Q")
    for n_filtered in (h["n_filtered"] + 1, h["n_filtered"] - 1):
        blob = patched(data, FIELD_AT["n_filtered"], u64.pack(n_filtered))
        assert "section sizes disagree" in error(blob, f"nfilt{n_filtered}")
    too_many_bits = patched(data, FIELD_AT["bucket_bits"], u32.pack(2 * K + 1))
    assert "corrupt index header" in error(too_many_bits, "bits")
    off_end = at["offs"][0] + 4 * h["n_keys"]
    assert "table bounds" in error(patched(data, off_end, u32.pack(h["n_positions"] - 1)), "offs")
    bucket_end = at["buckets"][0] + 4 * (1 << h["bucket_bits"])
    assert "table bounds" in error(patched(data, bucket_end, u32.pack(0)), "buckets")
    # Interior entries that fall back would send lookups out of bounds (found by a review). They
    # are checked on the table's first use, not at load (calling never reads the table).
    def use_error(blob: bytes, name: str) -> str:
        bad = tmp_path / f"{name}.gxi"
        bad.write_bytes(blob)
        loaded = _core.Index.load(str(bad))
        assert len(loaded.fetch(0, 0, 10)) == 10  # the reference is fine to use
        for use in (lambda: loaded.lookup(0), lambda: loaded.table_arrays()):
            with pytest.raises(InputError) as err:
                use()
            assert str(bad) in str(err.value)
        return str(err.value)

    mid_off = at["offs"][0] + 4 * (h["n_keys"] // 2)
    assert "not ascending" in use_error(patched(data, mid_off, u32.pack(h["n_positions"])),
                                        "offmid")
    mid_bucket = at["buckets"][0] + 4 * ((1 << h["bucket_bits"]) // 2)
    assert "not ascending" in use_error(patched(data, mid_bucket, u32.pack(h["n_keys"])), "bmid")
    first_hash = at["filtered_hashes"][0]
    unsorted = patched(data, first_hash, data[first_hash + 8 : first_hash + 16])
    assert "filtered minimizers" in error(unsorted, "fsort")
    out_of_range = patched(data, first_hash, u64.pack(1 << 2 * K))
    assert "filtered minimizers" in error(out_of_range, "frange")
    low_count = patched(data, at["filtered_counts"][0], u32.pack(MAX_OCC))
    assert "filtered minimizers" in error(low_count, "fcount")
    # A k = 24 index needs 16 bucket bits at least, so that its keys' 32 bits hold the rest.
    wide = _core.Index.build(str(fasta), k=24, w=10, max_occ=MAX_OCC)
    wide_path = tmp_path / "wide.gxi"
    wide.save(str(wide_path))
    wide_data = wide_path.read_bytes()
    assert sections(wide_data)[0]["bucket_bits"] == 16
    too_few_bits = patched(wide_data, FIELD_AT["bucket_bits"], u32.pack(15))
    assert "corrupt index header" in error(too_few_bits, "fewbits")


def test_save_to_unwritable_place(tmp_path: Path, index: _core.Index) -> None:
    with pytest.raises(InputError):
        index.save(str(tmp_path / "no" / "such" / "dir.gxi"))


class Alarm(Exception):
    pass


@pytest.mark.parametrize("width", [60, 0], ids=["wrapped", "one-line"])
def test_a_signal_stops_a_build(tmp_path: Path, width: int) -> None:
    """Ctrl-C or SIGTERM during a build (minutes for a human genome, all in C++) stops it within
    a block of FASTA lines (or of one long line's bases) or a part of the ordering, not at its
    end."""
    rng = np.random.default_rng(5)
    seq = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, 24_000_000)].tobytes()
    path = tmp_path / "big.fa"
    with open(path, "wb") as f:
        f.write(b">big\n")
        for i in range(0, len(seq), width or len(seq)):
            f.write(seq[i:i + (width or len(seq))] + b"\n")
    t0 = time.monotonic()
    _core.Index.build(str(path))
    whole = time.monotonic() - t0  # (one thread: the yardstick of how late a stop may come)
    t0 = time.monotonic()
    _core.Index.build(str(path), threads=2)
    whole_2 = time.monotonic() - t0  # (as the builds interrupted below run: within it)
    caught: list[float] = []

    def handler(signum: int, frame: object) -> None:
        caught.append(time.monotonic() - t0)
        raise Alarm

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        for delay in (0.02, whole_2 * 0.5):  # (reading the FASTA; ordering the minimizers)
            stops = []
            for _ in range(3):  # (a busy machine can stall one try: one prompt stop will do)
                caught.clear()
                t0 = time.monotonic()
                signal.setitimer(signal.ITIMER_REAL, delay)
                with pytest.raises(Alarm):
                    _core.Index.build(str(path), threads=2)
                stops.append(caught[0])
                if caught[0] < delay + 0.25 * whole:
                    break
            assert min(stops) < delay + 0.25 * whole, (delay, stops, whole, whole_2)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
