"""GPU read-versus-haplotype costs (gmsaccel._cuda.haplotype_costs) against the CPU definition,
job for job, and the GPU calling path end to end.

Without a CUDA device the module's host emulation (same sorting, chunking, packing and
unpacking; kernel threads run on the host) stands in, so CI checks everything but the device.
"""

from __future__ import annotations

import numpy as np
import pysam
import pytest
from conftest import random_genome, write_fasta
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

try:
    from gmsaccel import _core, _cuda
except ImportError as exc:  # a CPU-only build (the default)
    pytest.skip(f"gmsaccel._cuda unavailable: {exc}", allow_module_level=True)

HAS_GPU = _cuda.device_count() > 0
gpu = pytest.mark.skipif(not HAS_GPU, reason="no CUDA device")
BACKENDS = [pytest.param("gpu", marks=gpu), "emulated"]
OFF = 5


def run(backend: str, reads, quals, haps, bands, **kwargs):
    return _cuda.haplotype_costs(reads, quals, haps, bands, emulate=backend == "emulated",
                                 **kwargs)


def cpu(reads, quals, haps, bands, **kwargs):
    return _core.haplotype_costs(reads, quals, haps, bands, level="scalar", **kwargs)


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == np.int32
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"costs differ at jobs {bad[:10].tolist()}: {got[bad[:10]]} vs " \
                          f"{want[bad[:10]]}"


def random_jobs(seed: int, n: int, max_len: int = 200, max_band: int = 65):
    """Jobs over the whole input domain: len 1..max_len, band 1..max_band, codes 0..5, quals
    0..60; half of them reads drawn from their haplotype's centre (realistic low costs), half
    unrelated (costs near or at the saturation)."""
    rng = np.random.default_rng(seed)
    reads, quals, haps, bands = [], [], [], []
    for _ in range(n):
        m = int(rng.integers(1, max_len + 1))
        band = int(rng.integers(1, max_band + 1))
        hap = rng.integers(0, 6, m + band - 1, dtype=np.uint8)
        if rng.random() < 0.5:
            hap = np.where(rng.random(hap.size) < 0.9, rng.integers(0, 4, hap.size), hap)
            k0 = int(rng.integers(0, band))
            read = hap[k0 : k0 + m].copy()
            flip = rng.random(m) < 0.05
            read[flip] = rng.integers(0, 6, int(flip.sum()))
        else:
            read = rng.integers(0, 6, m, dtype=np.uint8)
        reads.append(read.astype(np.uint8).tobytes())
        quals.append(rng.integers(0, 61, m, dtype=np.uint8).tobytes())
        haps.append(hap.astype(np.uint8).tobytes())
        bands.append(band)
    return reads, quals, haps, np.array(bands, dtype=np.int64)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scratch", ["auto", "tiles", "tiles32", "shared", "global"])
def test_random_jobs_equal_cpu(backend: str, scratch: str) -> None:
    jobs = random_jobs(1, 1500)
    stats: dict = {}
    assert_same(run(backend, *jobs, scratch=scratch, stats=stats), cpu(*jobs))
    assert stats["layout"] == {"auto": "tiles", "tiles": "tiles", "tiles32": "tiles",
                               "shared": "shared rows", "global": "global rows"}[scratch]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40),
       shape=st.lists(st.sampled_from([1, 2, 7, 8, 9, 16, 17, 24, 25, 33]), min_size=2,
                      max_size=2))
def test_tiles_match_scalar_on_strip_edge_shapes(seed: int, n: int, shape: list[int]) -> None:
    # lengths and bands around the strip width (8) and its multiples, where strips start and end
    jobs = random_jobs(seed, n, max_len=shape[0], max_band=shape[1])
    assert_same(run("emulated", *jobs, scratch="tiles"), cpu(*jobs))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("params", [(45, 10, 40), (0, 0, 0), (1, 1, 255), (1 << 20, 1 << 20, 7)])
def test_scoring_parameters(backend: str, params: tuple[int, int, int]) -> None:
    go, ge, mq = params
    jobs = random_jobs(2, 300)
    kw = {"gap_open": go, "gap_extend": ge, "max_qual": mq}
    assert_same(run(backend, *jobs, **kw), cpu(*jobs, **kw))


@pytest.mark.parametrize("backend", BACKENDS)
def test_large_batch_many_chunks(backend: str) -> None:
    n = 300_000 if backend == "gpu" else 20_000
    for length, band in ((60, 17), (150, 33)):
        jobs = _cuda.random_haplotype_jobs(n if band == 17 else n // 4, length, band, seed=3)
        stats: dict = {}
        got = run(backend, *jobs, chunk_jobs=n // 7, stats=stats)
        assert stats["chunks"] > 1
        assert_same(got, cpu(*jobs))


def test_mixed_bands_sort_back_to_job_order() -> None:
    # wide bands (global rows: no shared-memory fit) next to narrow ones in one batch
    jobs = random_jobs(4, 200, max_len=40, max_band=700)
    stats: dict = {}
    assert_same(run("emulated", *jobs, chunk_jobs=37, stats=stats), cpu(*jobs))
    with pytest.raises(ValueError, match="too wide"):
        run("emulated", *jobs, scratch="shared")


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_callers_get_their_own_results(backend: str) -> None:
    # more threads than workspaces per device: some lease at once, the others wait their turn
    from concurrent.futures import ThreadPoolExecutor

    batches = [random_jobs(70 + i, 300, max_len=120, max_band=33) for i in range(6)]
    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(lambda jobs: run(backend, *jobs, chunk_jobs=70), batches))
    for g, jobs in zip(got, batches, strict=True):
        assert_same(g, cpu(*jobs))


def test_huge_band_range_sorts_back_to_job_order() -> None:
    # a band range over 65535 takes the comparison sort instead of the counting sort
    reads, quals, haps, bands = random_jobs(6, 80, max_len=30, max_band=40)
    rng = np.random.default_rng(6)
    reads.insert(5, rng.integers(0, 4, 2, dtype=np.uint8).tobytes())
    quals.insert(5, bytes([30, 30]))
    haps.insert(5, rng.integers(0, 4, 2 + 70_000 - 1, dtype=np.uint8).tobytes())
    bands = np.insert(bands, 5, 70_000)
    jobs = (reads, quals, haps, bands)
    assert_same(run("emulated", *jobs), cpu(*jobs))


def test_out_of_memory_halves_the_chunk() -> None:
    jobs = random_jobs(5, 2000, max_len=100, max_band=33)
    stats: dict = {}
    got = run("emulated", *jobs, emulate_alloc_limit=64 << 10, stats=stats)
    assert stats["oom_retries"] > 0 and stats["chunks"] > 1
    assert_same(got, cpu(*jobs))
    with pytest.raises(RuntimeError, match="cudaErrorMemoryAllocation"):
        run("emulated", *jobs, emulate_alloc_limit=16)


def test_empty_batch_and_bad_arguments() -> None:
    assert run("emulated", [], [], [], []).shape == (0,)
    with pytest.raises(ValueError, match="len \\+ band - 1"):
        run("emulated", [b"\x00"], [b"\x1e"], [b"\x00"], [2])
    with pytest.raises(ValueError, match="codes are 0..5"):
        run("emulated", [b"\x07"], [b"\x1e"], [b"\x00"], [1])
    with pytest.raises(ValueError, match="gap_open"):
        run("emulated", [b"\x00"], [b"\x1e"], [b"\x00"], [1], gap_open=-1)
    with pytest.raises(ValueError, match="does not exist"):
        _cuda.haplotype_costs([b"\x00"], [b"\x1e"], [b"\x00"], [1],
                              device=_cuda.device_count())


def test_backend_capsule_registers() -> None:
    cap = _cuda.haplotype_backend()
    _core.set_haplotype_backend(cap)
    assert _core.has_haplotype_backend()
    with pytest.raises(ValueError, match="not a gmsaccel haplotype backend"):
        _core.set_haplotype_backend(_cuda.extend_backend())


def test_time_haplotype_reports_rates() -> None:
    r = _cuda.time_haplotype(500, 60, 17, repeats=1, emulate=True)
    assert r["cells"] == 500 * 60 * 17 and r["gcups_end_to_end"] > 0 and r["layout"] == "tiles"


# ---- the caller's GPU path -----------------------------------------------------------------


@pytest.mark.skipif(not hasattr(_core, "call_region"), reason="no calling engine in this build")
@pytest.mark.parametrize("mode", ["emulated", "no room", pytest.param("device", marks=gpu)])
def test_caller_gpu_records_equal_cpu_records(tmp_path, monkeypatch, mode: str) -> None:
    """The same records on the GPU path, and where the device has no room even for one job
    (emulated: every allocation over 10 bytes fails), the CPU runs the batch instead."""
    from gmsaccel.align import Aligner, Index
    from gmsaccel.call import Caller
    from gmsaccel.simulate import plant_variants, simulate_pairs, write_fastq

    if mode != "device":
        monkeypatch.setenv("GMSACCEL_GPU_EMULATE", "1")
    if mode == "no room":
        monkeypatch.setenv("GMSACCEL_GPU_EMULATE_MEMORY", "10")
    contigs = random_genome(41, {"c1": 12_000, "c2": 5_000})
    ref = write_fasta(tmp_path / "ref.fa", contigs)
    pysam.faidx(str(ref))
    haps, _ = plant_variants(contigs, rate=0.004, indel_fraction=0.3, ploidy=2, seed=42)
    r1, r2 = simulate_pairs(haps, 1100, read_length=150, seed=43)
    f1, f2 = write_fastq(tmp_path / "r1.fq", r1), write_fastq(tmp_path / "r2.fq", r2)
    index = Index.build(ref)
    bam = tmp_path / "s.bam"
    Aligner(index, threads=2, device="cpu").align_fastq(f1, f2, bam,
                                                       read_group=r"@RG\tID:s\tSM:s")

    def body(path) -> list[str]:
        with pysam.VariantFile(str(path)) as vf:
            return [str(r) for r in vf]

    caller = Caller(ref, device="gpu", threads=2, index=index)
    assert caller.device == "gpu"
    for gvcf in (False, True):  # the gVCF's blocks too
        want = tmp_path / f"cpu-{gvcf}.vcf"
        Caller(ref, device="cpu", index=index).write_vcf(bam, want, gvcf=gvcf)
        got = tmp_path / f"gpu-{gvcf}.vcf"
        summary = caller.write_vcf(bam, got, gvcf=gvcf)
        records = body(want)
        assert len(records) > 20
        assert body(got) == records
        assert (summary["gpu_fallbacks"] > 0) == (mode == "no room")
