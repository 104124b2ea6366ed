"""gVCF reference blocks: per-position hom-ref confidence from pileup counts, banded by GQ.

Model (per position, one sample). Reads carrying the reference base are `r`; reads carrying any
other evidence (another base, a deletion, or an insertion after the position) are `a`. Each base
is wrong with probability e, taken from the mean base quality at the position (capped to
[1e-6, 0.25]). Treating "some other allele" as one allele X:

    0/0:  P(ref read) = 1 - e,                 P(other read) = e
    0/X:  P(ref read) = P(other read) = 1/2    (diploid only)
    X/X:  P(ref read) = e,                     P(other read) = 1 - e

PL over (REF, <*>) is -10 log10 of each genotype's likelihood, minus the smallest. GQ of hom-ref
is the second smallest PL when 0/0 is the most likely genotype, else 0; capped at 99. No prior
is applied, so GQ reflects the evidence alone (as GATK's reference confidence does). Positions
without coverage get DP 0, GQ 0, PL 0,0,0.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

from gmsaccel import _core

# Lower bounds of GQ bands: a block holds consecutive positions whose GQ falls in one band
# [0,1), [1,10), [10,20), [20,30), [30,40), [40,60), [60,99), [99, inf).
GQ_BANDS: tuple[int, ...] = (0, 1, 10, 20, 30, 40, 60, 99)
MAX_GQ = 99
MAX_PL = 9999


# Positions computed together by homref_likelihoods: its float temporaries are several times
# the size of the pileup they come from, so a 1 Mbp shard goes a piece at a time.
LIKELIHOOD_PIECE = 65_536
_PILEUP_KEYS = ("base_counts", "base_qual_sums", "deletions", "insertions", "depth")


def homref_likelihoods(pileup: Mapping[str, np.ndarray], ref_codes: np.ndarray,
                       ploidy: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gq, pl, depth) per position from a pileup dict (base_counts (n,5), base_qual_sums
    (n,5), deletions, insertions, depth) and the reference codes of the same positions.
    pl is (n, 3) for ploidy 2 and (n, 2) for ploidy 1; gq and depth are int arrays."""
    if ploidy not in (1, 2):
        raise ValueError(f"ploidy must be 1 or 2, not {ploidy}")
    n = len(pileup["depth"])
    if len(ref_codes) != n:
        raise ValueError(f"pileup covers {n} positions but ref_codes {len(ref_codes)}")
    if n <= LIKELIHOOD_PIECE:
        return _homref_piece(pileup, ref_codes, ploidy)
    parts = [_homref_piece({k: pileup[k][a:a + LIKELIHOOD_PIECE] for k in _PILEUP_KEYS},
                           ref_codes[a:a + LIKELIHOOD_PIECE], ploidy)
             for a in range(0, n, LIKELIHOOD_PIECE)]
    gq, pl, depth = (np.concatenate([part[i] for part in parts]) for i in range(3))
    return gq, pl, depth


def _homref_piece(pileup: Mapping[str, np.ndarray], ref_codes: np.ndarray,
                  ploidy: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = np.asarray(pileup["base_counts"], dtype=np.float64)
    qsums = np.asarray(pileup["base_qual_sums"], dtype=np.float64)
    dels = np.asarray(pileup["deletions"], dtype=np.float64)
    ins = np.asarray(pileup["insertions"], dtype=np.float64)
    depth = np.asarray(pileup["depth"], dtype=np.int64)
    codes = np.asarray(ref_codes, dtype=np.int64)
    n = counts.shape[0]
    acgt = counts[:, :4]
    rows = np.arange(n)
    is_base = codes < 4
    ref_n = np.where(is_base, acgt[rows, np.minimum(codes, 3)], 0.0)
    # at an N reference base no read supports the reference
    other = acgt.sum(axis=1) - ref_n + dels + ins
    nbases = counts.sum(axis=1)
    mean_q = np.divide(qsums.sum(axis=1), nbases, out=np.full(n, 30.0), where=nbases > 0)
    e = np.clip(10.0 ** (-mean_q / 10.0), 1e-6, 0.25)
    le, l1e, lhalf = np.log10(e), np.log10(1.0 - e), np.log10(0.5)
    ll_ref = ref_n * l1e + other * le          # 0/0 (or 0 haploid)
    ll_alt = ref_n * le + other * l1e          # X/X (or X haploid)
    if ploidy == 2:
        ll = np.stack([ll_ref, (ref_n + other) * lhalf, ll_alt], axis=1)
    else:
        ll = np.stack([ll_ref, ll_alt], axis=1)
    pl = -10.0 * (ll - ll.max(axis=1, keepdims=True))
    pl = np.minimum(np.rint(pl), MAX_PL).astype(np.int64)
    best_is_ref = pl[:, 0] == 0
    gq = np.where(best_is_ref, np.sort(pl, axis=1)[:, 1], 0)
    gq = np.minimum(gq, MAX_GQ)
    uncovered = (ref_n + other) == 0
    gq[uncovered] = 0
    pl[uncovered] = 0
    return gq.astype(np.int64), pl, depth


def gq_band(gq: np.ndarray | int) -> np.ndarray:
    """Index of each GQ's band in GQ_BANDS."""
    return np.searchsorted(np.asarray(GQ_BANDS), np.asarray(gq), side="right") - 1


@dataclass(frozen=True)
class RefBlock:
    start: int  # 0-based
    end: int  # exclusive
    gq: int  # minimum over the block
    min_dp: int
    dp: int  # mean depth, rounded
    pl: tuple[int, ...]  # element-wise minimum over the block (0 for hom-ref)


@dataclass(frozen=True)
class BlockArrays:
    """Reference blocks as columns (what reference_blocks yields one by one), ascending by
    start: a shard's blocks without an object each. They hold their positions' reductions
    (sums and minima), so that two blocks that meet at a shard's edge join into the block one
    shard would have made (join_at_edge)."""

    start: np.ndarray  # 0-based
    end: np.ndarray  # exclusive
    gq: np.ndarray  # minimum over the positions
    min_dp: np.ndarray
    dp_sum: np.ndarray  # depth summed over the positions
    pl_min: np.ndarray  # (blocks, genotypes): each genotype's minimum over the positions

    def __len__(self) -> int:
        return len(self.start)

    @property
    def dp(self) -> np.ndarray:
        """Mean depth (rounded)."""
        return np.rint(self.dp_sum / (self.end - self.start)).astype(np.int64)

    @property
    def pl(self) -> np.ndarray:
        """PL: the genotypes' minima, the smallest made 0."""
        return self.pl_min - self.pl_min.min(axis=1, keepdims=True)

    @staticmethod
    def empty(n_pl: int) -> BlockArrays:
        z = np.zeros(0, np.int64)
        return BlockArrays(z, z, z, z, z, np.zeros((0, n_pl), np.int64))

    def take(self, index: slice) -> BlockArrays:
        return BlockArrays(*(getattr(self, f.name)[index] for f in fields(BlockArrays)))

    def join_at_edge(self, after: BlockArrays) -> BlockArrays:
        """This one-block tail and the blocks of the next shard (which start at or after its
        end) as one BlockArrays, the tail joined to the first block when they meet in one GQ
        band (as one shard's run of positions would have been), else put before it."""
        if len(after) and int(after.start[0]) == int(self.end[0]) and \
                gq_band(self.gq[:1])[0] == gq_band(after.gq[:1])[0]:
            head = BlockArrays(self.start[:1], after.end[:1],
                               np.minimum(self.gq[:1], after.gq[:1]),
                               np.minimum(self.min_dp[:1], after.min_dp[:1]),
                               self.dp_sum[:1] + after.dp_sum[:1],
                               np.minimum(self.pl_min[:1], after.pl_min[:1]))
            return BlockArrays.merge([head, after.take(slice(1, None))])
        return BlockArrays.merge([self, after])

    @staticmethod
    def merge(parts: Sequence[BlockArrays]) -> BlockArrays:
        """The blocks of disjoint parts, in start order."""
        cols = [np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(BlockArrays)]
        order = np.argsort(cols[0], kind="stable")
        return BlockArrays(*(c[order] for c in cols))


def reference_block_arrays(start: int, gq: np.ndarray, pl: np.ndarray, depth: np.ndarray,
                           excluded: Sequence[tuple[int, int]] | np.ndarray = (),
                           max_block: int = 0) -> BlockArrays:
    """The blocks of reference_blocks, as columns (excluded: pairs, or an (n, 2) array):
    computed by the engine (one pass in C++,
    the GIL released, on the calling threads of a gVCF run) where the build has it, else by
    reference_block_arrays_numpy, the definition."""
    if not hasattr(_core, "reference_block_runs") or not _fits_int32(gq, pl, depth):
        return reference_block_arrays_numpy(start, gq, pl, depth, excluded, max_block)
    pl = np.asarray(pl)
    n_pl = pl.shape[1] if pl.ndim == 2 else 0
    if len(gq) == 0:
        return BlockArrays.empty(n_pl)
    spans = np.asarray(excluded, dtype=np.int64).reshape(-1, 2)
    runs = _core.reference_block_runs(int(start), gq, pl, depth, spans[:, 0].copy(),
                                      spans[:, 1].copy(), list(GQ_BANDS), int(max_block))
    return BlockArrays(runs["start"], runs["end"], runs["gq"], runs["min_dp"], runs["dp_sum"],
                       runs["pl_min"])


def _fits_int32(*columns: np.ndarray) -> bool:
    """Whether the engine's 32-bit columns hold these values (the engine's own always do)."""
    for col in columns:
        a = np.asarray(col)
        if a.dtype.kind not in "iu":
            return False
        if not np.can_cast(a.dtype, np.int32) and a.size and \
                (a.min() < -(2**31) or a.max() >= 2**31):
            return False
    return True


def reference_block_arrays_numpy(start: int, gq: np.ndarray, pl: np.ndarray, depth: np.ndarray,
                                 excluded: Sequence[tuple[int, int]] = (),
                                 max_block: int = 0) -> BlockArrays:
    """reference_block_arrays in numpy: the definition the engine's version is tested against."""
    gq = np.asarray(gq)
    pl = np.asarray(pl)
    depth = np.asarray(depth)
    n = len(gq)
    n_pl = pl.shape[1] if pl.ndim == 2 else 0
    if n == 0:
        return BlockArrays.empty(n_pl)
    keep = np.ones(n, dtype=bool)
    for s, e in excluded:
        lo, hi = max(s - start, 0), min(e - start, n)
        if lo < hi:
            keep[lo:hi] = False
    band = gq_band(gq)
    # a new run starts wherever kept-ness or band changes
    change = np.ones(n, dtype=bool)
    if n > 1:
        change[1:] = (band[1:] != band[:-1]) | (keep[1:] != keep[:-1])
    lo = np.flatnonzero(change)
    if max_block > 0:  # runs longer than max_block are cut every max_block positions
        run_len = np.diff(np.append(lo, n))
        pieces = (run_len + max_block - 1) // max_block
        lo = np.repeat(lo, pieces) + max_block * (
            np.arange(pieces.sum()) - np.repeat(np.cumsum(pieces) - pieces, pieces))
    hi = np.append(lo[1:], n)
    # Every block's statistics at once (reductions over all runs, then the kept ones): with a
    # block every few positions, per-block numpy calls were most of a gVCF's time.
    kept = keep[lo]
    gq_min = np.minimum.reduceat(gq, lo)[kept]
    dp_min = np.minimum.reduceat(depth, lo)[kept]
    dp_sum = np.add.reduceat(depth.astype(np.int64), lo)[kept]
    pl_min = np.minimum.reduceat(pl, lo, axis=0)[kept]
    lo, hi = lo[kept], hi[kept]
    return BlockArrays(lo + start, hi + start, gq_min.astype(np.int64),
                       dp_min.astype(np.int64), dp_sum, pl_min.astype(np.int64))


def reference_blocks(start: int, gq: np.ndarray, pl: np.ndarray, depth: np.ndarray,
                     excluded: Sequence[tuple[int, int]] = (),
                     max_block: int = 0) -> Iterator[RefBlock]:
    """Blocks covering [start, start + len(gq)) outside the excluded intervals (0-based,
    half-open, e.g. the spans of variant records), each a run of positions in one GQ band (and
    at most max_block long when max_block > 0)."""
    b = reference_block_arrays(start, gq, pl, depth, excluded, max_block)
    for a, e, g, dmin, dmean, p in zip(b.start.tolist(), b.end.tolist(), b.gq.tolist(),
                                       b.min_dp.tolist(), b.dp.tolist(), b.pl.tolist(),
                                       strict=True):
        yield RefBlock(a, e, g, dmin, dmean, tuple(p))
