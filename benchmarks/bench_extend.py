"""Throughput of batched extension at each SIMD level, in GCUPS (cells = qlen * band).

Run: PYTHONPATH=src python3 -m pytest benchmarks/bench_extend.py --benchmark-only -s
"""

from __future__ import annotations

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from gmsaccel import _core

LEVELS = ["scalar", "avx2", "avx512"]
HW_RANK = LEVELS.index(_core.max_simd_level())
N_READS, QLEN = 4096, 150


def make_batch(band: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    """150-bp reads with ~2% substitutions, each placed at a random diagonal of its window."""
    rng = np.random.default_rng(seed)
    queries, targets = [], []
    for _ in range(N_READS):
        target = rng.integers(0, 4, QLEN + band - 1).astype(np.uint8)
        shift = int(rng.integers(0, band))
        read = target[shift : shift + QLEN].copy()
        if len(read) < QLEN:
            read = np.concatenate([read, rng.integers(0, 4, QLEN - len(read)).astype(np.uint8)])
        hits = rng.random(QLEN) < 0.02
        read[hits] = (read[hits] + rng.integers(1, 4, int(hits.sum()))) % 4
        queries.append(read)
        targets.append(target)
    return queries, targets, [band] * N_READS


@pytest.mark.parametrize("band", [33, 129])
@pytest.mark.parametrize(
    "level",
    [
        pytest.param(name, marks=pytest.mark.skipif(i > HW_RANK, reason=f"CPU lacks {name}"))
        for i, name in enumerate(LEVELS)
    ],
)
def test_extend_batch_gcups(benchmark: BenchmarkFixture, level: str, band: int) -> None:
    queries, targets, bands = make_batch(band)
    cells = N_READS * QLEN * band
    result = benchmark.pedantic(
        _core.extend_batch,
        args=(queries, targets, bands),
        kwargs={"level": level},
        rounds=3 if level == "scalar" else 5,
        iterations=1,
        warmup_rounds=1,
    )
    assert len(result[5]) == N_READS
    gcups = cells / benchmark.stats.stats.min / 1e9
    benchmark.extra_info["cells"] = cells
    benchmark.extra_info["gcups"] = round(gcups, 3)
    print(f"\nextend_batch level={level} band={band}: {gcups:.3f} GCUPS (best of rounds)")
