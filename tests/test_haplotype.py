"""Tests for read-versus-haplotype costs (gmsaccel._core.haplotype_costs) at every SIMD level."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import HW_RANK, LEVELS, SIMD_LEVELS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gmsaccel import _core

N, OFF = 4, 5
OFF_COST = 60
DEFAULTS = {"gap_open": 45, "gap_extend": 10, "max_qual": 40}
Job = tuple[list[int], list[int], list[int], int]  # read, quals, haplotype, band


# --- independent reference -------------------------------------------------------------------


def reference_cost(
    read: list[int],
    qual: list[int],
    hap: list[int],
    band: int,
    gap_open: int = 45,
    gap_extend: int = 10,
    max_qual: int = 40,
) -> int:
    """Full Viterbi DP in (read index i, haplotype index j) coordinates, j - i in [0, band)."""
    m = len(read)
    assert len(qual) == m and len(hap) == m + band - 1
    inf = math.inf

    def sub(i: int, j: int) -> int:
        if hap[j] == OFF:
            return OFF_COST
        if read[i] == N or hap[j] == N or qual[i] == 0 or read[i] == hap[j]:
            return 0
        return min(qual[i], max_qual)

    def inside(i: int, j: int) -> bool:
        return 0 <= i < m and 0 <= j - i < band

    mm: dict[tuple[int, int], float] = {}
    dd: dict[tuple[int, int], float] = {}
    ii: dict[tuple[int, int], float] = {}
    hh: dict[tuple[int, int], float] = {}
    for i in range(m):
        for j in range(i, i + band):
            # match: the previous read base sat on the previous haplotype base
            prev = 0 if i == 0 else (hh[i - 1, j - 1] if inside(i - 1, j - 1) else inf)
            mm[i, j] = prev + sub(i, j)
            # deletion: haplotype base j skipped after cell (i, j-1)
            dd[i, j] = (
                min(hh[i, j - 1] + gap_open, dd[i, j - 1] + gap_extend) if inside(i, j - 1) else inf
            )
            # insertion: read base i placed after cell (i-1, j), on no haplotype base
            ii[i, j] = (
                min(hh[i - 1, j] + gap_open, ii[i - 1, j] + gap_extend) if inside(i - 1, j) else inf
            )
            hh[i, j] = min(mm[i, j], dd[i, j], ii[i, j])
    best = min(hh[m - 1, j] for j in range(m - 1, m - 1 + band))
    assert best < inf
    return int(best)


# --- helpers ---------------------------------------------------------------------------------


def u8(xs: list[int] | np.ndarray) -> np.ndarray:
    return np.asarray(xs, dtype=np.uint8)


def run(jobs: list[Job], level: str = "scalar", **kw: int) -> list[int]:
    reads = [u8(j[0]) for j in jobs]
    quals = [u8(j[1]) for j in jobs]
    haps = [u8(j[2]) for j in jobs]
    bands = [j[3] for j in jobs]
    out = _core.haplotype_costs(reads, quals, haps, bands, level=level, **kw)
    assert out.dtype == np.int32 and out.shape == (len(jobs),)
    return out.tolist()


@st.composite
def jobs_st(draw: st.DrawFn, max_len: int = 30, max_band: int = 10) -> Job:
    m = draw(st.integers(1, max_len))
    band = draw(st.integers(1, max_band))
    codes = st.integers(0, 5)
    read = draw(st.lists(codes, min_size=m, max_size=m))
    qual = draw(st.lists(st.integers(0, 60), min_size=m, max_size=m))
    if draw(st.booleans()):
        hap = draw(st.lists(codes, min_size=m + band - 1, max_size=m + band - 1))
    else:
        # a haplotype close to the read (shifted, edited) so that gaps and matches both matter
        shift = draw(st.integers(0, band - 1))
        tail = draw(st.lists(codes, min_size=band - 1, max_size=band - 1))
        hap = (tail[:shift] + read + tail[shift:])[: m + band - 1]
        for _ in range(draw(st.integers(0, 3))):
            pos = draw(st.integers(0, len(hap) - 1))
            op = draw(st.sampled_from(["sub", "ins", "del"]))
            if op == "sub":
                hap[pos] = draw(codes)
            elif op == "ins":
                hap = hap[:pos] + [draw(codes)] + hap[pos:-1]
            else:
                hap = hap[:pos] + hap[pos + 1 :] + [draw(codes)]
    return read, qual, hap, band


def random_batch(rng: np.random.Generator, n: int, lens: list[int], bands: list[int]) -> list[Job]:
    """Reads drawn from (mutated) haplotypes at random offsets, with some random haplotypes."""
    jobs: list[Job] = []
    for _ in range(n):
        m = int(rng.choice(lens))
        band = int(rng.choice(bands))
        hap = rng.integers(0, 4, m + band - 1)
        if rng.random() < 0.2:
            read = rng.integers(0, 6, m)
        else:
            shift = int(rng.integers(0, band))
            read = hap[shift : shift + m].copy()
            if len(read) < m:
                read = np.concatenate([read, rng.integers(0, 4, m - len(read))])
            hits = rng.random(m) < 0.05
            read[hits] = rng.integers(0, 6, int(hits.sum()))
            if m > 10 and rng.random() < 0.5:  # an indel in the read
                pos = int(rng.integers(1, m - 1))
                k = int(rng.integers(1, 4))
                extra = rng.integers(0, 4, k)
                read = (
                    np.concatenate([read[:pos], read[pos + k :], extra])
                    if rng.random() < 0.5
                    else np.concatenate([read[:pos], extra, read[pos:]])
                )[:m]
        if rng.random() < 0.1:  # off-haplotype tail
            hap[len(hap) - int(rng.integers(1, len(hap) + 1)) :] = OFF
        qual = rng.integers(0, 61, m)
        jobs.append((read.tolist(), qual.tolist(), hap.tolist(), band))
    return jobs


# --- scalar against the reference ------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(job=jobs_st())
def test_scalar_matches_reference(job: Job) -> None:
    assert run([job]) == [reference_cost(*job)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    job=jobs_st(max_len=15, max_band=6),
    gap_open=st.integers(0, 80),
    gap_extend=st.integers(0, 80),
    max_qual=st.integers(0, 70),
)
def test_scalar_matches_reference_any_scores(
    job: Job, gap_open: int, gap_extend: int, max_qual: int
) -> None:
    kw = {"gap_open": gap_open, "gap_extend": gap_extend, "max_qual": max_qual}
    assert run([job], **kw) == [reference_cost(*job, **kw)]


# --- SIMD levels against scalar --------------------------------------------------------------


@pytest.mark.parametrize("level", SIMD_LEVELS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(jobs=st.lists(jobs_st(), min_size=0, max_size=80))
def test_simd_matches_scalar_hypothesis(level: str, jobs: list[Job]) -> None:
    assert run(jobs, level) == run(jobs)


@pytest.mark.parametrize("level", SIMD_LEVELS)
def test_simd_matches_scalar_mixed_batch(level: str) -> None:
    # Mixed lengths and bands, many groups per band and partial groups.
    rng = np.random.default_rng(7)
    jobs = random_batch(rng, 700, lens=[1, 2, 5, 17, 40, 60, 101], bands=[1, 2, 3, 9, 16, 17, 33])
    assert run(jobs, level) == run(jobs)


@pytest.mark.parametrize("level", SIMD_LEVELS)
def test_simd_matches_scalar_len150_band33(level: str) -> None:
    rng = np.random.default_rng(11)
    jobs = random_batch(rng, 100, lens=[150], bands=[33])
    costs = run(jobs, level)
    assert costs == run(jobs)
    # spot-check the long jobs against the reference too
    assert costs[:3] == [reference_cost(*j) for j in jobs[:3]]


@pytest.mark.parametrize("level", SIMD_LEVELS)
def test_simd_saturating_cells(level: str) -> None:
    # Huge gap costs put the int16 ceiling low, so many cells saturate while optima stay exact.
    rng = np.random.default_rng(3)
    jobs = random_batch(rng, 200, lens=[3, 20, 40], bands=[4, 9])
    kw = {"gap_open": 30000, "gap_extend": 2000, "max_qual": 60}
    assert run(jobs, level, **kw) == run(jobs, **kw)


@pytest.mark.parametrize("level", SIMD_LEVELS)
def test_simd_falls_back_for_large_costs(level: str) -> None:
    # Costs beyond int16 (long reads, qualities up to 255): those jobs go through scalar.
    rng = np.random.default_rng(5)
    jobs = random_batch(rng, 40, lens=[300, 600], bands=[5])
    jobs = [(r, [255] * len(q), h, b) for r, q, h, b in jobs]
    jobs += random_batch(rng, 40, lens=[50], bands=[5])
    jobs += [([0] * 200, [255] * 200, [1] * 200, 1)] * 3  # band 1, every base mismatches
    kw = {"max_qual": 255}
    costs = run(jobs, level, **kw)
    assert costs == run(jobs, **kw)
    assert costs[-1] == 200 * 255


# --- known cases -----------------------------------------------------------------------------


def rand_codes(seed: int, n: int) -> list[int]:
    return np.random.default_rng(seed).integers(0, 4, n).tolist()


@pytest.mark.parametrize("level", LEVELS[: HW_RANK + 1])
def test_known_cases(level: str) -> None:
    hap = rand_codes(1, 70)
    read = hap[10:50]
    band = 21  # the read sits on diagonal 10 of a window of 40 + 20 bases
    q30 = [30] * 40
    hap, full = hap[:60], hap
    jobs: list[Job] = [(read, q30, hap, band)]  # identical: 0
    mis = list(read)
    mis[17] = (mis[17] + 1) % 4
    jobs.append((mis, q30, hap, band))  # one mismatch at quality 30: 30
    # the read lacks haplotype bases 30 and 31: a 2-base deletion, open + extend
    deleted = full[10:30] + full[32:52]
    jobs.append((deleted, q30, full[:61], band + 1))
    # N in the read and in the haplotype cost nothing
    nread = list(read)
    nread[5] = N
    nhap = list(hap)
    nhap[10 + 20] = N
    nread[20] = (nread[20] + 2) % 4
    jobs.append((nread, q30, nhap, band))
    # qualities above max_qual are capped; quality 0 costs nothing
    capped = list(read)
    capped[3] = (capped[3] + 1) % 4
    capped[4] = (capped[4] + 1) % 4
    hq = list(q30)
    hq[3], hq[4] = 60, 0
    jobs.append((capped, hq, hap, band))
    assert run(jobs, level) == [0, 30, 45 + 10, 0, 40]
    assert run(jobs[4:], level, max_qual=50) == [50]


def test_insertion_and_off_haplotype() -> None:
    hap = rand_codes(2, 50)
    read = hap[5:20] + [0, 1, 2] + hap[20:35]  # 3 extra read bases: open + 2 extends
    assert run([(read, [40] * 33, hap[: 33 + 9], 10)]) == [45 + 2 * 10]
    # every haplotype position off: each read base pays the off-haplotype cost
    # (gaps made dear: otherwise inserting read bases beside one off base is cheaper)
    job = ([0, 1, 2], [10, 20, 30], [OFF] * 4, 2)
    assert run([job], gap_open=200, gap_extend=200) == [3 * OFF_COST]
    assert run([job]) == [OFF_COST + OFF_COST + 45] == [reference_cost(*job)]


@pytest.mark.parametrize("level", LEVELS[: HW_RANK + 1])
def test_empty_batch_and_level_default(level: str) -> None:
    assert run([], level) == []
    job = ([0, 1], [20, 20], [0, 2, 3], 2)
    assert _core.haplotype_costs([u8(job[0])], [u8(job[1])], [u8(job[2])], [2]).tolist() == [
        reference_cost(*job)
    ]
    # bytes work as well as arrays
    assert _core.haplotype_costs(
        [bytes(job[0])], [bytes(job[1])], [bytes(job[2])], [2], level=level
    ).tolist() == [reference_cost(*job)]


# --- bad input -------------------------------------------------------------------------------


def test_bad_input() -> None:
    r, q, h = u8([0, 1, 2]), u8([30, 30, 30]), u8([0, 1, 2, 3])
    with pytest.raises(ValueError, match="len \\+ band - 1"):
        _core.haplotype_costs([r], [q], [h], [3])
    with pytest.raises(ValueError, match="qualities"):
        _core.haplotype_costs([r], [u8([30, 30])], [h], [2])
    with pytest.raises(ValueError, match="differ in length"):
        _core.haplotype_costs([r], [q, q], [h], [2])
    with pytest.raises(ValueError, match="one band per read"):
        _core.haplotype_costs([r], [q], [h], [2, 2])
    with pytest.raises(ValueError, match="bands"):
        _core.haplotype_costs([r], [q], [h], [0])
    with pytest.raises(ValueError, match="reads"):
        _core.haplotype_costs([u8([])], [u8([])], [u8([0])], [2])
    with pytest.raises(ValueError, match="codes are 0..5"):
        _core.haplotype_costs([u8([0, 6, 1])], [q], [h], [2])
    with pytest.raises(ValueError, match="gap_open"):
        _core.haplotype_costs([r], [q], [h], [2], gap_open=-1)
    with pytest.raises(ValueError, match="uint8"):
        _core.haplotype_costs([np.zeros(3, np.int32)], [q], [h], [2])
    with pytest.raises(ValueError, match="unknown SIMD level"):
        _core.haplotype_costs([r], [q], [h], [2], level="sse9")
    with pytest.raises(TypeError):
        _core.haplotype_costs([[0, 1, 2]], [q], [h], [2])
