"""Seeding on the CPU (_core.batch_anchors) against its definition composed in Python from the
separately tested minimizers and index lookups; and the table arrays the GPU copies."""

from __future__ import annotations

import random

import numpy as np
import pytest
from conftest import expected_bucket_bits, random_genome, table_contents, write_fasta
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gmsaccel import _core


@pytest.fixture(scope="module")
def seed_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[_core.Index, list[np.ndarray]]:
    contigs = random_genome(21, {"a": 30_000, "b": 8_000})
    # a repeat, so that some minimizers have several positions
    contigs[1] = ("b", contigs[1][1][:3000] + contigs[0][1][5000:7000] + contigs[1][1][5000:])
    fasta = write_fasta(tmp_path_factory.mktemp("seed") / "ref.fa", contigs)
    idx = _core.Index.build(fasta, k=15, w=7)
    codes = [idx.fetch(i, 0, len(seq)) for i, (_, seq) in enumerate(contigs)]
    return idx, codes


def naive_anchors(idx: _core.Index, read: np.ndarray, k: int, w: int) -> list[tuple[int, int, int]]:
    out = []
    for m in _core.minimizers(read, k, w):
        for v in idx.lookup(int(m["hash"])):
            gpos, rev = int(v) >> 1, (int(v) & 1) ^ int(m["rev"])
            qpos = len(read) - int(m["pos"]) - k if rev else int(m["pos"])
            out.append((rev, qpos, gpos - qpos))
    return out


def read_from(rng: random.Random, codes: list[np.ndarray], length: int) -> np.ndarray:
    src = codes[rng.randrange(len(codes))]
    start = rng.randrange(max(1, len(src) - length))
    read = src[start : start + length].copy()
    for _ in range(rng.randrange(5)):  # substitutions and Ns
        if length:
            read[rng.randrange(len(read))] = rng.randrange(5)
    if rng.random() < 0.5:
        read = np.where(read < 4, 3 - read, read)[::-1].astype(np.uint8)
    return np.ascontiguousarray(read)


def split(result: tuple[np.ndarray, ...]) -> list[list[tuple[int, int, int]]]:
    offsets, rev, qpos, diag = result
    return [
        list(zip(rev[a:b].tolist(), qpos[a:b].tolist(), diag[a:b].tolist(), strict=True))
        for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)
    ]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lengths=st.lists(st.integers(0, 300), max_size=12), seed=st.integers(0, 2**32 - 1))
def test_batch_anchors_match_definition(seed_index, lengths: list[int], seed: int) -> None:
    idx, codes = seed_index
    rng = random.Random(seed)
    reads = [read_from(rng, codes, n) for n in lengths]
    got = split(_core.batch_anchors(idx, reads))
    assert got == [naive_anchors(idx, r, 15, 7) for r in reads]


def test_anchors_found_for_exact_reads(seed_index) -> None:
    idx, codes = seed_index
    read = np.ascontiguousarray(codes[0][1000:1150])
    anchors = split(_core.batch_anchors(idx, [read]))[0]
    # contig a starts at global 0: every minimizer of the read anchors it on diagonal 1000
    assert len([a for a in anchors if a[0] == 0 and a[2] == 1000]) == len(
        _core.minimizers(read, 15, 7)
    )


def test_table_arrays_answer_lookups(seed_index) -> None:
    idx, _ = seed_index
    t = idx.table_arrays()
    keys, offs, positions, buckets = t["keys"], t["offs"], t["positions"], t["buckets"]
    rev_bits = t["rev_bits"]
    assert {a.dtype for a in (keys, offs, positions, buckets)} == {np.dtype(np.uint32)}
    assert rev_bits.dtype == np.uint64 and len(rev_bits) == (len(positions) + 63) // 64
    assert len(offs) == len(keys) + 1 and offs[0] == 0 and offs[-1] == len(positions)
    assert np.all(np.diff(offs.astype(np.int64)) > 0)  # filtered hashes are not in the table
    assert buckets[0] == 0 and buckets[-1] == len(keys)
    assert np.all(np.diff(buckets.astype(np.int64)) >= 0)
    n_buckets = len(buckets) - 1
    assert n_buckets == 1 << expected_bucket_bits(idx.k, len(keys))
    assert t["hash_limit"] >> t["bucket_shift"] == n_buckets
    assert np.all(keys.astype(np.uint64) < np.uint64(1 << t["bucket_shift"]))
    contents = table_contents(t)
    hashes = np.array(list(contents), dtype=np.uint64)
    assert len(hashes) == len(keys) == idx.stats["n_minimizers"]
    assert np.all(hashes[1:] > hashes[:-1])
    for h, values in contents.items():
        assert idx.lookup(h).tolist() == values
    assert not keys.flags.writeable  # a view of the index's (possibly mmapped) memory


def test_reads_must_be_base_codes(seed_index) -> None:
    idx, _ = seed_index
    with pytest.raises((TypeError, ValueError), match=r"reads\[1\]"):
        _core.batch_anchors(idx, [b"\x00\x01", "ACGT"])
    with pytest.raises(ValueError, match=r"reads\[0\]"):
        _core.batch_anchors(idx, [b"\x00\x09"])
