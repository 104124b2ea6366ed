"""GPU batched extension (gmsaccel._cuda) against the CPU definition, job for job.

The module only exists in builds with GMSACCEL_CUDA=ON. Tests marked `gpu` need a CUDA device;
the others run the same pipeline with the kernel's threads emulated on the host (emulate=True),
which checks the chunking, packing and unpacking without a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

try:
    from gmsaccel import _core, _cuda
except ImportError as exc:  # a CPU-only build (the default), or no importable package at all
    pytest.skip(f"gmsaccel._cuda unavailable: {exc}", allow_module_level=True)

HAS_GPU = _cuda.device_count() > 0
gpu = pytest.mark.skipif(not HAS_GPU, reason="no CUDA device")
N, OFF = 4, 5
BACKENDS = [pytest.param("gpu", marks=gpu), "emulated"]
LAYOUTS = ["tiles", "tiles32", "shared", "global"]  # scratch= values; auto is tiles
LAYOUT_NAMES = {"tiles": "tile pairs", "tiles32": "tiles", "shared": "shared rows",
                "global": "global rows"}  # of the last launch


def cpu(queries, targets, bands, **scores):
    """The CPU side: _core's scalar level where the extend stage is built, else the same header
    compiled into _cuda for the host."""
    if hasattr(_core, "extend_batch"):
        return _core.extend_batch(queries, targets, bands, level="scalar", **scores)
    return _cuda.extend_batch_host(queries, targets, bands, **scores)


def run(backend: str, queries, targets, bands, **kwargs):
    return _cuda.extend_batch(queries, targets, bands, emulate=backend == "emulated", **kwargs)


def assert_same(got, want) -> None:
    names = ["score", "q_begin", "q_end", "t_begin", "t_end"]
    for name, g, w in zip(names, got[:5], want[:5], strict=True):
        assert g.dtype == np.int32
        bad = np.flatnonzero(g != w)
        assert bad.size == 0, (
            f"{name} differs at jobs {bad[:10].tolist()}: {g[bad[:10]]} vs {w[bad[:10]]}"
        )
    bad = [i for i, (g, w) in enumerate(zip(got[5], want[5], strict=True)) if g != w]
    assert not bad, (
        f"CIGARs differ at jobs {bad[:10]}: {[(got[5][i], want[5][i]) for i in bad[:3]]}"
    )


def mutate(rng: np.random.Generator, seq: np.ndarray, rate: float) -> np.ndarray:
    out = []
    for b in seq.tolist():
        x = rng.random()
        if x < rate / 3:
            continue  # deletion
        if x < 2 * rate / 3:
            out.append(int(rng.integers(0, 4)))  # insertion
        out.append(int(rng.integers(0, 4)) if rng.random() < rate else b)
    return np.array(out, dtype=np.uint8)


def mixed_job(rng: np.random.Generator, max_qlen: int = 200, max_band: int = 129):
    qlen = int(rng.integers(1, max_qlen + 1))
    band = int(rng.integers(1, max_band + 1))
    tlen = qlen + band - 1
    kind = int(rng.integers(0, 5))
    if kind == 0:  # garbage, every code on both sides
        return rng.integers(0, 6, qlen, dtype=np.uint8), rng.integers(0, 6, tlen, dtype=np.uint8)
    if kind == 1:  # all-equal: every diagonal scores the same, so ties decide
        c = int(rng.integers(0, 5))
        return np.full(qlen, c, np.uint8), np.full(tlen, c, np.uint8)
    target = rng.integers(0, 4, tlen, dtype=np.uint8)
    target[rng.random(tlen) < 0.02] = N
    start = int(rng.integers(0, band))
    query = mutate(rng, target[start:], 0.05)[:qlen]
    if query.size < qlen:
        query = np.concatenate([query, rng.integers(0, 4, qlen - query.size, dtype=np.uint8)])
    if kind == 3:  # window runs off the contig on one side
        cut = int(rng.integers(0, tlen + 1))
        if rng.random() < 0.5:
            target[:cut] = OFF
        else:
            target[cut:] = OFF
    if kind == 4:  # N in the read, garbage tail to soft-clip
        query[rng.random(qlen) < 0.05] = N
        tail = int(rng.integers(0, qlen + 1))
        query[qlen - tail :] = rng.integers(0, 4, tail, dtype=np.uint8)
    return query, target


def mixed_batch(seed: int, n: int, **kwargs):
    rng = np.random.default_rng(seed)
    jobs = [mixed_job(rng, **kwargs) for _ in range(n)]
    queries = [q for q, _ in jobs]
    targets = [t for _, t in jobs]
    bands = [t.size - q.size + 1 for q, t in jobs]
    return queries, targets, bands


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mixed_batches_match_cpu(backend: str, seed: int) -> None:
    q, t, b = mixed_batch(seed, 700)
    assert_same(run(backend, q, t, b), cpu(q, t, b))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scratch", LAYOUTS)
@pytest.mark.parametrize("chunk_jobs", [0, 1, 33, 250])
def test_scratch_and_chunking(backend: str, scratch: str, chunk_jobs: int) -> None:
    q, t, b = mixed_batch(10 + chunk_jobs, 300 if chunk_jobs != 1 else 40)
    stats: dict = {}
    got = run(backend, q, t, b, scratch=scratch, chunk_jobs=chunk_jobs, stats=stats)
    assert_same(got, cpu(q, t, b))
    assert stats["layout"] == LAYOUT_NAMES[scratch]


def test_tiles_are_the_default_layout() -> None:
    q, t, b = mixed_batch(11, 50)
    stats: dict = {}
    assert_same(_cuda.extend_batch(q, t, b, emulate=True, stats=stats), cpu(q, t, b))
    assert stats["layout"] == "tile pairs"


def read_like_job(rng: np.random.Generator, qlen: int, band: int):
    """A query drawn from its target window (15% of bases changed, some targets with N and
    off-contig codes): alignments with gaps and clips, across the band."""
    target = rng.integers(0, 6 if rng.random() < 0.3 else 4, qlen + band - 1).astype(np.uint8)
    start = int(rng.integers(0, band))
    query = target[start : start + qlen].copy()
    query = np.concatenate([query, rng.integers(0, 4, qlen - query.size)]).astype(np.uint8)
    hits = rng.random(qlen) < 0.15
    query[hits] = rng.integers(0, 6, int(hits.sum()))
    return query, target


@st.composite
def strip_shaped_batches(draw: st.DrawFn):
    """Jobs whose shapes stress the tiled layout's strip geometry: bands and lengths around the
    strip width (8) and its multiples, band 1, one-base reads, warps of unequal jobs."""
    shape = st.sampled_from([1, 2, 3, 7, 8, 9, 15, 16, 17, 23, 24, 25, 33, 40])
    n = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    queries, targets, bands = [], [], []
    for _ in range(n):
        qlen, band = draw(shape), draw(shape)
        query, target = read_like_job(rng, qlen, band)
        queries.append(query)
        targets.append(target)
        bands.append(band)
    return queries, targets, bands


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=strip_shaped_batches(), scratch=st.sampled_from(["tiles", "tiles32"]))
def test_tiles_match_scalar_on_strip_edge_shapes(batch, scratch: str) -> None:
    q, t, b = batch
    assert_same(_cuda.extend_batch(q, t, b, emulate=True, scratch=scratch), cpu(q, t, b))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 90),
       shapes=st.lists(st.tuples(st.integers(1, 40), st.integers(1, 40)), min_size=1,
                       max_size=4))
def test_tile_pairs_match_scalar(seed: int, n: int, shapes: list[tuple[int, int]]) -> None:
    # few shapes among many jobs: most pair up, some shapes have an odd count (a lone job in a
    # pair), and neighbours of another shape never share a pair
    rng = np.random.default_rng(seed)
    q, t, b = [], [], []
    for _ in range(n):
        qlen, band = shapes[int(rng.integers(0, len(shapes)))]
        query, target = read_like_job(rng, qlen, band)
        q.append(query)
        t.append(target)
        b.append(band)
    stats: dict = {}
    assert_same(_cuda.extend_batch(q, t, b, emulate=True, stats=stats), cpu(q, t, b))
    assert stats["layout"] == "tile pairs"


def test_tile_pairs_beside_jobs_too_long_for_16_bits() -> None:
    # reads over 16000 bases (qlen * match > 16000) run in 32-bit tiles, the rest in pairs
    q, t, b = mixed_batch(13, 40, max_qlen=60, max_band=20)
    rng = np.random.default_rng(13)
    for qlen in (16_001, 16_050):
        target = rng.integers(0, 4, qlen + 4, dtype=np.uint8)
        q.append(target[2 : 2 + qlen].copy())
        t.append(target)
        b.append(5)
    assert_same(_cuda.extend_batch(q, t, b, emulate=True), cpu(q, t, b))
    scores = {"match": 3000, "mismatch": 4, "gap_open": 6, "gap_extend": 1, "clip": 5,
              "n_penalty": 1}  # a parameter over 2048: no 16-bit lanes for any job
    stats: dict = {}
    got = _cuda.extend_batch(q[:40], t[:40], b[:40], emulate=True, stats=stats, **scores)
    assert_same(got, cpu(q[:40], t[:40], b[:40], **scores))
    assert stats["layout"] == "tiles"


@pytest.mark.parametrize("backend", BACKENDS)
def test_memory_budget_splits_batch(backend: str) -> None:
    q, t, b = mixed_batch(20, 400)
    # ~200 KB per slot forces many chunks of uneven job counts
    assert_same(run(backend, q, t, b, memory_budget=200_000), cpu(q, t, b))


def test_out_of_memory_halves_chunks_and_retries() -> None:
    q, t, b = mixed_batch(22, 300)
    stats: dict = {}
    # emulated device allocations above 64 KB fail: the batch is redone in smaller chunks
    got = _cuda.extend_batch(q, t, b, emulate=True, emulate_alloc_limit=64 << 10, stats=stats)
    assert_same(got, cpu(q, t, b))
    assert stats["oom_retries"] > 0 and stats["chunks"] > 1
    with pytest.raises(RuntimeError, match="out of"):  # not even one job fits
        _cuda.extend_batch(q, t, b, emulate=True, emulate_alloc_limit=16)


@pytest.mark.parametrize("backend", BACKENDS)
def test_memory_budget_too_small_for_one_job(backend: str) -> None:
    q, t, b = mixed_batch(21, 3)
    with pytest.raises(RuntimeError, match="bytes of GPU memory"):
        run(backend, q, t, b, memory_budget=100)


@pytest.mark.parametrize("backend", BACKENDS)
def test_wide_bands_and_long_reads(backend: str) -> None:
    # bands beyond what shared memory holds take the global-memory rows
    q, t, b = mixed_batch(30, 40, max_qlen=1200, max_band=900)
    q.append(np.zeros(10, np.uint8))
    t.append(np.zeros(10 + 800 - 1, np.uint8))
    b.append(800)
    assert_same(run(backend, q, t, b), cpu(q, t, b))
    with pytest.raises(ValueError, match="too wide"):
        run(backend, q[-1:], t[-1:], b[-1:], scratch="shared")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "scores",
    [
        {"match": 2, "mismatch": 3, "gap_open": 5, "gap_extend": 2, "clip": 0, "n_penalty": 0},
        {"match": 1, "mismatch": 0, "gap_open": 0, "gap_extend": 0, "clip": 20, "n_penalty": 3},
        {
            "match": 5000,
            "mismatch": 4000,
            "gap_open": 3000,
            "gap_extend": 7,
            "clip": 9000,
            "n_penalty": 1,
        },
    ],
)
def test_other_scores(backend: str, scores: dict[str, int]) -> None:
    q, t, b = mixed_batch(40, 300)
    assert_same(run(backend, q, t, b, **scores), cpu(q, t, b, **scores))


def test_huge_band_range_sorts_back_to_job_order() -> None:
    # a band range over 65535 takes the comparison sort instead of the counting sort
    q, t, b = mixed_batch(12, 60, max_qlen=30, max_band=40)
    rng = np.random.default_rng(12)
    q.insert(17, rng.integers(0, 4, 3, dtype=np.uint8))
    t.insert(17, rng.integers(0, 4, 3 + 70_000 - 1, dtype=np.uint8))
    b.insert(17, 70_000)
    assert_same(_cuda.extend_batch(q, t, b, emulate=True), cpu(q, t, b))


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_like_jobs(backend: str) -> None:
    q, t, b = _cuda.random_jobs(500, 150, 33, seed=5)
    got = run(backend, q, t, b)
    assert_same(got, cpu(q, t, b))
    assert (got[0] > 100).mean() > 0.9  # near-identical reads align nearly end to end


@gpu
def test_large_batch_matches_cpu() -> None:
    q, t, b = _cuda.random_jobs(20_000, 150, 33, seed=7)
    assert_same(_cuda.extend_batch(q, t, b), cpu(q, t, b))
    # the same jobs split into an odd number of launches over both buffer slots
    assert_same(_cuda.extend_batch(q, t, b, chunk_jobs=2_900), cpu(q, t, b))


@gpu
def test_wide_band_batch_matches_cpu() -> None:
    q, t, b = _cuda.random_jobs(3_000, 150, 129, seed=8)
    want = cpu(q, t, b)
    for scratch in LAYOUTS:
        assert_same(_cuda.extend_batch(q, t, b, scratch=scratch), want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_callers_get_their_own_results(backend: str) -> None:
    # more threads than workspaces per device: some lease at once, the others wait their turn
    from concurrent.futures import ThreadPoolExecutor

    batches = [mixed_batch(60 + i, 120, max_qlen=120, max_band=65) for i in range(6)]
    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(lambda qtb: run(backend, *qtb, chunk_jobs=50), batches))
    for g, (q, t, b) in zip(got, batches, strict=True):
        assert_same(g, cpu(q, t, b))


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_batch(backend: str) -> None:
    got = run(backend, [], [], [])
    assert [x.size for x in got[:5]] == [0] * 5
    assert got[5] == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_validation(backend: str) -> None:
    with pytest.raises(ValueError, match="qlen \\+ band - 1"):
        run(backend, [b"\x00\x01"], [b"\x00\x01"], [2])
    with pytest.raises(ValueError, match="codes are 0..5"):
        run(backend, [b"\x06"], [b"\x00"], [1])
    with pytest.raises(ValueError, match="mismatch"):
        run(backend, [b"\x00"], [b"\x00"], [1], mismatch=-1)
    with pytest.raises(ValueError, match="scratch"):
        run(backend, [b"\x00"], [b"\x00"], [1], scratch="texture")


def test_missing_device_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="does not exist"):
        _cuda.extend_batch([b"\x00"], [b"\x00"], [1], device=_cuda.device_count())


def test_host_reference_matches_core() -> None:
    if not hasattr(_core, "extend_batch"):
        pytest.skip("_core built without the extend stage")
    q, t, b = mixed_batch(50, 300)
    assert_same(_cuda.extend_batch_host(q, t, b), _core.extend_batch(q, t, b, level="scalar"))


def test_random_jobs_deterministic() -> None:
    a = _cuda.random_jobs(5, 20, 7, seed=3)
    assert a[0] == _cuda.random_jobs(5, 20, 7, seed=3)[0]
    assert a[0] != _cuda.random_jobs(5, 20, 7, seed=4)[0]
    assert all(len(q) == 20 for q in a[0]) and all(len(t) == 26 for t in a[1])
    assert a[2].tolist() == [7] * 5


def test_devices_sane() -> None:
    devs = _cuda.devices()
    assert len(devs) == _cuda.device_count()
    for i, d in enumerate(devs):
        assert d["index"] == i
        assert isinstance(d["name"], str) and d["name"]
        assert d["total_memory"] > 1 << 30
        assert tuple(d["compute_capability"]) >= (7, 0)
        assert d["multiprocessors"] > 0


@gpu
def test_time_extend_reports_rates() -> None:
    r = _cuda.time_extend(2_000, 150, 33, repeats=1)
    assert r["cells"] == 2_000 * 150 * 33
    assert 0 < r["kernel_s"] <= r["end_to_end_s"]
    assert r["gcups_kernel"] >= r["gcups_end_to_end"] > 0
    assert r["layout"] == "tile pairs" and r["chunks"] == 1
