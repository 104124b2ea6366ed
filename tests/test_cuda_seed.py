"""GPU seeding (gmsaccel._cuda.seed_anchors and the aligner's backend) against the CPU's anchors,
read for read. Without a CUDA device the module's host emulation (same table copy, packing, two
passes and unpacking; kernel threads run on the host) stands in."""

from __future__ import annotations

import random

import numpy as np
import pytest
from conftest import random_genome, write_fasta
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_seed import read_from

try:
    from gmsaccel import _core, _cuda
except ImportError as exc:  # a CPU-only build (the default)
    pytest.skip(f"gmsaccel._cuda unavailable: {exc}", allow_module_level=True)

HAS_GPU = _cuda.device_count() > 0
gpu = pytest.mark.skipif(not HAS_GPU, reason="no CUDA device")
BACKENDS = [pytest.param("gpu", marks=gpu), "emulated"]


@pytest.fixture(scope="module")
def genome(tmp_path_factory: pytest.TempPathFactory):
    contigs = random_genome(31, {"a": 40_000, "b": 6_000})
    contigs[1] = ("b", contigs[1][1] + contigs[0][1][:4000])  # a repeat
    fasta = write_fasta(tmp_path_factory.mktemp("cuda_seed") / "ref.fa", contigs)
    return fasta, contigs


@pytest.fixture(scope="module")
def index(genome) -> _core.Index:
    return _core.Index.build(genome[0])


def codes_of(idx: _core.Index, contigs) -> list[np.ndarray]:
    return [idx.fetch(i, 0, len(seq)) for i, (_, seq) in enumerate(contigs)]


def same(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> None:
    for x, y, name in zip(a, b, ["offsets", "rev", "qpos", "diag"], strict=True):
        assert x.dtype == y.dtype and np.array_equal(x, y), name


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lengths=st.lists(st.integers(0, 400), max_size=40), seed=st.integers(0, 2**32 - 1))
def test_emulated_anchors_equal_cpu(index, genome, lengths: list[int], seed: int) -> None:
    rng = random.Random(seed)
    codes = codes_of(index, genome[1])
    reads = [read_from(rng, codes, n) for n in lengths]
    want = _core.batch_anchors(index, reads)
    same(_cuda.seed_anchors(index.table_arrays(), reads, emulate=True), want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_many_reads_and_the_backend(index, genome, backend: str) -> None:
    rng = random.Random(5)
    codes = codes_of(index, genome[1])
    lengths = [0, 20, 21, 100, 150, 151, 300]
    reads = [read_from(rng, codes, rng.choice(lengths)) for _ in range(3000)]
    want = _core.batch_anchors(index, reads)
    assert want[0][-1] > 3000  # most reads have anchors
    emulate = backend == "emulated"
    stats: dict = {}
    same(_cuda.seed_anchors(index.table_arrays(), reads, emulate=emulate, stats=stats), want)
    assert stats["anchors"] == want[0][-1]
    again: dict = {}
    same(_cuda.seed_anchors(index.table_arrays(), reads, emulate=emulate, stats=again), want)
    assert again["upload_s"] == 0  # the table stays on the device between calls
    _core.set_seed_backend(_cuda.seed_backend())
    assert _core.has_seed_backend()
    same(_core.batch_anchors(index, reads, device=0, emulate=emulate), want)


def test_out_of_memory_halves_and_retries(index, genome) -> None:
    rng = random.Random(6)
    codes = codes_of(index, genome[1])
    reads = [read_from(rng, codes, 150) for _ in range(2000)]
    want = _core.batch_anchors(index, reads)
    _cuda.release_workspaces()  # fresh buffers, so that the limit applies
    table = index.table_arrays()
    arrays = ("buckets", "keys", "offs", "positions", "rev_bits")
    limit = max(table[name].nbytes for name in arrays) + 1
    assert limit < 2000 * 150  # the reads alone need more than one allocation may take
    stats: dict = {}
    got = _cuda.seed_anchors(table, reads, emulate=True, emulate_alloc_limit=limit, stats=stats)
    same(got, want)
    assert stats["oom_splits"] > 0
    _cuda.release_workspaces()
    with pytest.raises(RuntimeError, match="does not fit"):
        _cuda.seed_anchors(table, reads[:2], emulate=True, emulate_alloc_limit=64)
    _cuda.release_workspaces()


def test_window_too_wide_for_the_kernel(genome) -> None:
    wide = _core.Index.build(genome[0], k=15, w=80)
    with pytest.raises(ValueError, match="w <= 64"):
        _cuda.seed_anchors(wide.table_arrays(), [b"\x00" * 100], emulate=True)


def test_no_reads(index) -> None:
    offsets, rev, qpos, diag = _cuda.seed_anchors(index.table_arrays(), [], emulate=True)
    assert offsets.tolist() == [0] and len(rev) == len(qpos) == len(diag) == 0


def test_tables_that_are_not_tables_are_refused(index) -> None:
    good = index.table_arrays()
    bad_shift = {**good, "bucket_shift": good["bucket_shift"] + 1}
    bad_offs = {**good, "offs": good["offs"][:-1]}
    bad_rev = {**good, "rev_bits": good["rev_bits"][:-1]}
    swapped = good["offs"].copy()
    swapped[1], swapped[2] = swapped[2], swapped[1]  # ends kept, no longer ascending
    unsorted_offs = {**good, "offs": swapped}
    bad_id = {**good, "id": 0}
    for table in (bad_shift, bad_offs, bad_rev, unsorted_offs):
        with pytest.raises(ValueError, match="not a minimizer table"):
            _cuda.seed_anchors(table, [b"\x00" * 50], emulate=True)
    # the previous layout's 64-bit keys, offsets and positions
    for name in ("keys", "offs", "positions"):
        with pytest.raises(TypeError, match=f"'{name}'.*wrong type"):
            wide = {**good, name: good[name].astype(np.uint64)}
            _cuda.seed_anchors(wide, [b"\x00" * 50], emulate=True)
    with pytest.raises(ValueError, match="nonzero"):
        _cuda.seed_anchors(bad_id, [b"\x00" * 50], emulate=True)


def test_missing_device_is_a_clear_error(index) -> None:
    with pytest.raises(ValueError, match="CUDA device 99 does not exist"):
        _cuda.seed_anchors(index.table_arrays(), [b"\x00" * 50], device=99)
