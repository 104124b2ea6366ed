"""Throughput of read-versus-haplotype costs at each SIMD level, in GCUPS (cells = len * band).

Run: PYTHONPATH=src python3 -m pytest benchmarks/bench_haplotype.py --benchmark-only -s
"""

from __future__ import annotations

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from gmsaccel import _core

LEVELS = ["scalar", "avx2", "avx512"]
HW_RANK = LEVELS.index(_core.max_simd_level())
N_JOBS = 20_000


def make_batch(
    length: int, band: int, seed: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[int]]:
    """Reads with ~2% substitutions placed at a random diagonal of their haplotype window."""
    rng = np.random.default_rng(seed)
    reads, quals, haps = [], [], []
    for _ in range(N_JOBS):
        hap = rng.integers(0, 4, length + band - 1).astype(np.uint8)
        shift = int(rng.integers(0, band))
        read = hap[shift : shift + length].copy()
        if len(read) < length:
            read = np.concatenate([read, rng.integers(0, 4, length - len(read)).astype(np.uint8)])
        hits = rng.random(length) < 0.02
        read[hits] = (read[hits] + rng.integers(1, 4, int(hits.sum()))) % 4
        reads.append(read)
        quals.append(rng.integers(2, 41, length).astype(np.uint8))
        haps.append(hap)
    return reads, quals, haps, [band] * N_JOBS


@pytest.mark.parametrize(("length", "band"), [(60, 17), (150, 33)])
@pytest.mark.parametrize(
    "level",
    [
        pytest.param(name, marks=pytest.mark.skipif(i > HW_RANK, reason=f"CPU lacks {name}"))
        for i, name in enumerate(LEVELS)
    ],
)
def test_haplotype_costs_gcups(
    benchmark: BenchmarkFixture, level: str, length: int, band: int
) -> None:
    reads, quals, haps, bands = make_batch(length, band)
    cells = N_JOBS * length * band
    costs = benchmark.pedantic(
        _core.haplotype_costs,
        args=(reads, quals, haps, bands),
        kwargs={"level": level},
        rounds=3 if level == "scalar" else 5,
        iterations=1,
        warmup_rounds=1,
    )
    assert len(costs) == N_JOBS
    gcups = cells / benchmark.stats.stats.min / 1e9
    benchmark.extra_info["cells"] = cells
    benchmark.extra_info["gcups"] = round(gcups, 3)
    print(f"\nhaplotype_costs level={level} len={length} band={band}: {gcups:.3f} GCUPS")
