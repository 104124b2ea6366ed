"""Tests for batched banded extension (gmsaccel._core.extend_batch) at every SIMD level."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import HW_RANK, LEVELS, RANK, SIMD_LEVELS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gmsaccel import _core

N, OFF = 4, 5
SCORES = {"match": 1, "mismatch": 4, "gap_open": 6, "gap_extend": 1, "clip": 5, "n_penalty": 1}
Result = tuple[int, int, int, int, int, str]


# --- independent reference -------------------------------------------------------------------


def reference_extend(
    query: list[int], target: list[int], band: int, sc: dict[str, int] = SCORES
) -> Result:
    """Full-matrix DP in (query row i, target column j) coordinates, with j - i in [0, band)."""
    m = len(query)
    assert len(target) == m + band - 1
    low = -(10**9)  # stands in for every out-of-band neighbour
    go, ge = sc["gap_open"] + sc["gap_extend"], sc["gap_extend"]

    def sub(a: int, b: int) -> int:
        if b == OFF:
            return -100
        if a == N or b == N:
            return -sc["n_penalty"]
        return sc["match"] if a == b else -sc["mismatch"]

    def inside(i: int, j: int) -> bool:
        return 0 <= i < m and 0 <= j - i < band

    h: dict[tuple[int, int], int] = {}
    e: dict[tuple[int, int], int] = {}
    f: dict[tuple[int, int], int] = {}
    src: dict[tuple[int, int], str] = {}  # "cont", "start", "E", "F"
    e_ext: dict[tuple[int, int], bool] = {}
    f_ext: dict[tuple[int, int], bool] = {}
    best = (low - 1, -1, -1)
    for i in range(m):
        start = 0 if i == 0 else -sc["clip"]
        for j in range(i, i + band):
            diag = h[(i - 1, j - 1)] if inside(i - 1, j - 1) else low
            if diag >= start:
                mv, how = diag + sub(query[i], target[j]), "cont"
            else:
                mv, how = start + sub(query[i], target[j]), "start"
            if inside(i, j - 1):
                opened, extended = h[(i, j - 1)] - go, e[(i, j - 1)] - ge
                e_ext[(i, j)] = extended > opened
                ev = max(opened, extended)
            else:
                ev = low
            if inside(i - 1, j):
                opened, extended = h[(i - 1, j)] - go, f[(i - 1, j)] - ge
                f_ext[(i, j)] = extended > opened
                fv = max(opened, extended)
            else:
                fv = low
            hv = mv
            if ev > hv:
                hv, how = ev, "E"
            if fv > hv:
                hv, how = fv, "F"
            h[(i, j)], e[(i, j)], f[(i, j)], src[(i, j)] = hv, ev, fv, how
            end = hv - (0 if i == m - 1 else sc["clip"])
            if end > best[0]:
                best = (end, i, j)
    score, i, j = best
    q_end, t_end = i + 1, j + 1
    ops: list[str] = []
    state = "H"
    while True:
        if state == "H":
            how = src[(i, j)]
            if how in ("cont", "start"):
                ops.append("M")
                if how == "start" or i == 0:
                    break
                i, j = i - 1, j - 1
                continue
            state = how
        if state == "E":
            ops.append("D")
            state = "E" if e_ext[(i, j)] else "H"
            j -= 1
        else:
            ops.append("I")
            state = "F" if f_ext[(i, j)] else "H"
            i -= 1
    ops.reverse()
    cigar = ""
    run = 1
    for k, op in enumerate(ops):
        if k + 1 < len(ops) and ops[k + 1] == op:
            run += 1
        else:
            cigar += f"{run}{op}"
            run = 1
    return score, i, q_end, j, t_end, cigar


# --- helpers ---------------------------------------------------------------------------------


def run(
    queries: list[np.ndarray], targets: list[np.ndarray], bands: list[int], level: str, **sc: int
) -> list[Result]:
    s, qb, qe, tb, te, cig = _core.extend_batch(queries, targets, bands, level=level, **sc)
    return [
        (int(s[i]), int(qb[i]), int(qe[i]), int(tb[i]), int(te[i]), cig[i])
        for i in range(len(queries))
    ]


def codes(values: list[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.uint8)


def mutate(rng: np.random.Generator, seq: np.ndarray, rate: float) -> np.ndarray:
    """Substitutions, small indels and the odd N, so alignments exercise every recurrence."""
    out: list[int] = []
    i = 0
    while i < len(seq):
        x = rng.random()
        if x < rate:
            out.append(int(rng.integers(0, 4)))
        elif x < 2 * rate:
            i += int(rng.integers(1, 4))  # deletion from the read
            continue
        elif x < 3 * rate:
            out.extend(int(c) for c in rng.integers(0, 4, int(rng.integers(1, 4))))
        elif x < 3.3 * rate:
            out.append(N)
        else:
            out.append(int(seq[i]))
        i += 1
    return np.asarray(out or [0], dtype=np.uint8)


def random_job(rng: np.random.Generator, qlen: int, band: int) -> tuple[np.ndarray, np.ndarray]:
    """A read drawn from near the middle diagonal of its window, or pure noise now and then."""
    target = rng.integers(0, 4, qlen + band - 1).astype(np.uint8)
    if rng.random() < 0.1:
        target[rng.random(len(target)) < 0.05] = OFF
    if rng.random() < 0.15:
        query = rng.integers(0, 6, qlen).astype(np.uint8)
    else:
        shift = int(rng.integers(0, band))
        src = np.concatenate([target[shift:], rng.integers(0, 4, qlen + 8).astype(np.uint8)])
        query = mutate(rng, src[: qlen + 4], float(rng.choice([0.0, 0.02, 0.05, 0.1, 0.2])))
        query = (
            np.resize(query, qlen)
            if len(query) >= qlen
            else np.concatenate([query, rng.integers(0, 4, qlen - len(query)).astype(np.uint8)])
        )
    return query.astype(np.uint8), target


def random_batch(
    rng: np.random.Generator, n: int, qlens: list[int], bands: list[int]
) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    qs, ts, bs = [], [], []
    for _ in range(n):
        qlen, band = int(rng.choice(qlens)), int(rng.choice(bands))
        q, t = random_job(rng, qlen, band)
        qs.append(q)
        ts.append(t)
        bs.append(band)
    return qs, ts, bs


# --- (1) scalar equals the reference ---------------------------------------------------------


@st.composite
def small_jobs(draw: st.DrawFn) -> tuple[list[int], list[int], int]:
    qlen = draw(st.integers(1, 40))
    band = draw(st.integers(1, 12))
    alphabet = st.integers(0, 5)
    target = draw(st.lists(alphabet, min_size=qlen + band - 1, max_size=qlen + band - 1))
    if draw(st.booleans()):
        query = draw(st.lists(alphabet, min_size=qlen, max_size=qlen))
    else:  # mostly matching reads give long alignments with gaps
        shift = draw(st.integers(0, band - 1))
        query = [c if c < 4 else 0 for c in target[shift : shift + qlen]]
        for _ in range(draw(st.integers(0, 4))):
            pos = draw(st.integers(0, qlen - 1))
            query[pos] = draw(alphabet)
        query = (query + [1] * qlen)[:qlen]
    return query, target, band


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_jobs())
def test_scalar_matches_reference(job: tuple[list[int], list[int], int]) -> None:
    query, target, band = job
    got = run([codes(query)], [codes(target)], [band], "scalar")[0]
    assert got == reference_extend(query, target, band)


@pytest.mark.parametrize(
    "sc",
    [
        {"match": 2, "mismatch": 3, "gap_open": 2, "gap_extend": 2, "clip": 0, "n_penalty": 0},
        {"match": 1, "mismatch": 1, "gap_open": 0, "gap_extend": 1, "clip": 20, "n_penalty": 3},
    ],
)
def test_scalar_matches_reference_other_scores(sc: dict[str, int]) -> None:
    rng = np.random.default_rng(7)
    qs, ts, bs = random_batch(rng, 60, list(range(1, 30)), list(range(1, 10)))
    got = run(qs, ts, bs, "scalar", **sc)
    for q, t, b, g in zip(qs, ts, bs, got, strict=True):
        assert g == reference_extend(q.tolist(), t.tolist(), b, sc)


# --- (2) SIMD levels equal scalar ------------------------------------------------------------


def assert_levels_agree(
    level: str, qs: list[np.ndarray], ts: list[np.ndarray], bs: list[int], **sc: int
) -> None:
    want = run(qs, ts, bs, "scalar", **sc)
    got = run(qs, ts, bs, level, **sc)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g == w, f"job {i}: qlen {len(qs[i])} band {bs[i]}"


@pytest.mark.parametrize("level", SIMD_LEVELS)
@pytest.mark.parametrize(
    ("n", "qlens", "bands"),
    [
        (1, [1], [1]),
        (3, [1, 2, 3], [1]),
        (33, [150], [129]),  # a full AVX-512 group plus one
        (70, list(range(1, 60)), [1, 2, 5, 12]),  # several bands, ragged lengths
        (200, [148, 149, 150, 151], [33]),  # many full groups and a partial one
        (47, [1, 150], [129, 1]),
    ],
)
def test_simd_matches_scalar(level: str, n: int, qlens: list[int], bands: list[int]) -> None:
    rng = np.random.default_rng(n * 1000 + len(qlens))
    qs, ts, bs = random_batch(rng, n, qlens, bands)
    assert_levels_agree(level, qs, ts, bs)


@pytest.mark.parametrize("level", SIMD_LEVELS)
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 80))
def test_simd_matches_scalar_random(level: str, seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    qs, ts, bs = random_batch(rng, n, list(range(1, 80)), [1, 2, 3, 7, 16, 33])
    assert_levels_agree(level, qs, ts, bs)


@pytest.mark.parametrize("level", SIMD_LEVELS)
@pytest.mark.parametrize(
    "sc",
    [
        {"match": 2, "mismatch": 3, "gap_open": 2, "gap_extend": 2, "clip": 0, "n_penalty": 0},
        {"match": 1, "mismatch": 1, "gap_open": 0, "gap_extend": 1, "clip": 20, "n_penalty": 3},
        # beyond the int16 kernel's range: must fall back and still agree
        {"match": 300, "mismatch": 4, "gap_open": 6, "gap_extend": 1, "clip": 5000, "n_penalty": 1},
    ],
)
def test_simd_matches_scalar_other_scores(level: str, sc: dict[str, int]) -> None:
    rng = np.random.default_rng(11)
    qs, ts, bs = random_batch(rng, 90, [1, 20, 60, 100], [1, 4, 9, 33])
    assert_levels_agree(level, qs, ts, bs, **sc)


def test_results_independent_of_batch_order() -> None:
    rng = np.random.default_rng(5)
    qs, ts, bs = random_batch(rng, 100, list(range(1, 100)), [3, 17, 33])
    level = _core.max_simd_level()
    want = run(qs, ts, bs, level)
    perm = rng.permutation(len(qs))
    got = run([qs[i] for i in perm], [ts[i] for i in perm], [bs[i] for i in perm], level)
    assert [want[i] for i in perm] == got


# --- (3) known alignments --------------------------------------------------------------------


def window(ref: np.ndarray, read_start: int, qlen: int, band: int) -> np.ndarray:
    """Target window whose middle diagonal starts at read_start."""
    off = read_start - band // 2
    return ref[off : off + qlen + band - 1]


@pytest.mark.parametrize("level", LEVELS)
def test_exact_match(level: str) -> None:
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 4, 400).astype(np.uint8)
    qs, ts, bs = [], [], []
    for qlen, band in [(1, 1), (37, 5), (150, 33), (150, 129), (100, 21)] * 7:
        qs.append(ref[100 : 100 + qlen])
        ts.append(window(ref, 100, qlen, band))
        bs.append(band)
    for (score, qb, qe, tb, te, cigar), q, b in zip(run(qs, ts, bs, level), qs, bs, strict=True):
        assert (score, qb, qe, cigar) == (len(q), 0, len(q), f"{len(q)}M")
        assert (tb, te) == (b // 2, b // 2 + len(q))


@pytest.mark.parametrize("level", LEVELS)
def test_planted_deletion_and_insertion(level: str) -> None:
    rng = np.random.default_rng(3)
    ref = rng.integers(0, 4, 400).astype(np.uint8)
    s, a = 100, 150  # read start, indel position in the reference
    # make the gap placement unique: neither shifting it left nor right is an equal alignment
    ref[a - 1], ref[a], ref[a + 1], ref[a + 2], ref[a + 3] = 0, 1, 2, 3, 2
    deletion = np.concatenate([ref[s:a], ref[a + 3 : a + 53]])
    insertion = np.concatenate([ref[s:a], codes([3, 1]), ref[a : a + 48]])
    band = 21
    qs = [deletion, insertion] * 20
    ts = [window(ref, s, 100, band)] * 40
    got = run(qs, ts, [band] * 40, level)
    for score, qb, qe, tb, te, cigar in got[0::2]:
        assert cigar == "50M3D50M"
        assert (score, qb, qe, tb, te) == (100 - 9, 0, 100, 10, 113)
    for score, qb, qe, tb, te, cigar in got[1::2]:
        assert cigar == "50M2I48M"
        assert (score, qb, qe, tb, te) == (98 - 8, 0, 100, 10, 108)


@pytest.mark.parametrize("level", LEVELS)
def test_garbage_tail_is_soft_clipped(level: str) -> None:
    rng = np.random.default_rng(4)
    ref = rng.integers(0, 4, 400).astype(np.uint8)
    read = ref[100:200].copy()
    read[90:] = (read[90:] + 1 + rng.integers(0, 3, 10)) % 4  # every tail base mismatches
    band = 33
    got = run([read] * 5, [window(ref, 100, 100, band)] * 5, [band] * 5, level)
    for score, qb, qe, _tb, _te, cigar in got:
        assert qe < 100
        assert (qb, qe, cigar, score) == (0, 90, "90M", 90 - 5)


# --- (4) levels, environment cap and input validation ----------------------------------------


def test_level_names() -> None:
    assert _core.max_simd_level() in LEVELS
    assert _core.simd_level() in LEVELS
    assert RANK[_core.simd_level()] <= HW_RANK


@pytest.mark.parametrize("cap", ["scalar", "avx2", "avx512", "AVX2"])
def test_env_caps_level(monkeypatch: pytest.MonkeyPatch, cap: str) -> None:
    monkeypatch.setenv("GMSACCEL_SIMD", cap)
    assert _core.simd_level() == LEVELS[min(RANK[cap.lower()], HW_RANK)]
    assert _core.max_simd_level() == LEVELS[HW_RANK]


def test_env_unknown_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GMSACCEL_SIMD", "sse9")
    with pytest.raises(ValueError, match="sse9"):
        _core.simd_level()
    with pytest.raises(ValueError, match="sse9"):
        _core.extend_batch([b"\x00"], [b"\x00"], [1])


def test_env_unset_is_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GMSACCEL_SIMD", raising=False)
    assert _core.simd_level() == _core.max_simd_level()
    assert "GMSACCEL_SIMD" not in os.environ


def test_unknown_level_argument() -> None:
    with pytest.raises(ValueError, match="avx9"):
        _core.extend_batch([b"\x00"], [b"\x00"], [1], level="avx9")


def test_level_above_cpu_is_clamped() -> None:
    got = run([codes([0, 1, 2])], [codes([0, 1, 2])], [1], "avx512")
    assert got == [(3, 0, 3, 0, 3, "3M")]


def test_bytes_and_arrays_accepted() -> None:
    q = bytes([0, 1, 2, 3, 1])
    t = bytes([2, 0, 1, 2, 3, 1, 0])
    a = run([q], [t], np.array([3]), "scalar")  # type: ignore[list-item]
    b = run([codes(list(q))], [np.frombuffer(t, dtype=np.uint8)[::1]], [3], "scalar")
    assert a == b == [(5, 0, 5, 1, 6, "5M")]
    strided = np.repeat(codes(list(t)), 2)[::2]
    assert run([codes(list(q))], [strided], [3], "scalar") == a


@pytest.mark.parametrize(
    ("queries", "targets", "bands", "message"),
    [
        ([b"\x00\x01"], [b"\x00\x01"], [2], "qlen \\+ band - 1"),
        ([b"\x00"], [b"\x00"], [0], "bands\\[0\\]"),
        ([b""], [b"\x00"], [2], "queries\\[0\\]"),
        ([b"\x06"], [b"\x00"], [1], "base code 6"),
        ([b"\x00"], [b"\x09"], [1], "targets\\[0\\]"),
        ([b"\x00"], [b"\x00", b"\x00"], [1], "differ in length"),
        ([b"\x00"], [b"\x00"], [1, 1], "one band per query"),
        ([np.zeros(1, dtype=np.int32)], [b"\x00"], [1], "uint8"),
    ],
)
def test_validation(queries: list, targets: list, bands: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _core.extend_batch(queries, targets, bands)


def test_negative_score_rejected() -> None:
    with pytest.raises(ValueError, match="mismatch"):
        _core.extend_batch([b"\x00"], [b"\x00"], [1], mismatch=-1)


def test_empty_batch() -> None:
    s, qb, qe, tb, te, cig = _core.extend_batch([], [], [])
    assert len(s) == len(qb) == len(qe) == len(tb) == len(te) == len(cig) == 0
