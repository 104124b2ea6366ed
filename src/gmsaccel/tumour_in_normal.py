"""Tumour in the normal: how much of a tumour's cells its matched normal holds
(`estimate_tumour_in_normal`, `call --somatic --tumour-in-normal auto`).

A matched normal is not always free of the tumour. A leukaemia's blood normal holds leukaemic
cells; tissue taken beside a solid tumour holds some of its cells. Such a normal shows the
tumour's somatic alleles too, at a share of their fraction in the tumour (the tumour's cells
in the normal, relative to the tumour sample's), and a caller that takes any sign of an allele
in the normal as germline or as an artifact throws those alleles away: the more clonal the
allele, the surer.

The share (TiN, as the literature calls it) is estimated from a somatic VCF's records,
called with none assumed: at each candidate allele the tumour's fraction f and the normal's
reads of the allele and of the reference (FORMAT AF and AD). The normal's reads of the allele
are binomial (or beta-binomial, below), each site from one of four kinds, whose shares are
fitted in each tenth of the tumour fraction (germline alleles gather where their copy numbers
put them, somatic ones where their clones do):

- somatic: at TiN * f, seen through the read error rate e;
- germline heterozygous: at h, a heterozygote's share of the reads (about 1/2; alignment
  favours the reference a little, and a deep normal tells 0.47 from 1/2, which a kind held at
  1/2 would give to the somatic kind at a TiN near 1); or, where the tumour has lost or gained
  a copy, at h (1 - TiN) + TiN * f, as its cells in the normal show it (two kinds: a
  balanced heterozygote's f strays from 1/2 by the tumour's sampling alone, which the second
  would read as a smaller TiN); germline homozygous: at 1 - e;
- where heterozygotes' allele balance strays from site to site (a deep panel's capture bias,
  which both samples' reads show alike), the balanced heterozygote is beta-binomial instead:
  its site's balance Beta(k h, k (1 - h)) updated by the tumour's reads of it. A binomial
  at h read such a normal's heterozygotes, which track the tumour's fractions, as the
  somatic kind at a TiN near 0.93 (tumour 500x, normal 1,000x, a spread of 3%). k is fitted
  from both samples' reads at the sites near 1/2 and used only where the data reject the
  binomial; the heterozygote the tumour changed stays binomial;
- anything else (an artifact both samples show, a paralog's reads): at a fraction uniform on
  [0, 1], so that such sites do not pull TiN. Its share has a pseudo-count of one site
  (OTHER_PRIOR) in each band, so that a lone odd site goes there rather than to the somatic
  kind at a higher TiN.

The error rate e is fitted with the shares at each TiN (a profile likelihood): the homozygous
sites' reads of the reference measure it, and so do the somatic sites' reads of the allele,
alike at every tumour fraction where TiN's grow with it (with fewer than MIN_HOM_SITES
homozygous sites it is held at ERROR: one clone's somatic sites alone cannot tell e from TiN).
Left at a fixed rate, a normal read a little noisier than it reads as a small TiN; and taken
from the homozygous sites alone as exact, a clean normal's interval left out 0 in 5 of 60
simulations (9 of 60 with 20 homozygous sites), against 2 (and none) fitted. h is measured: the
pooled share at sites where the tumour's fraction is near 1/2 and the normal's is within
HET_BAND.

TiN is the value maximising the likelihood (the kinds' shares and e fitted at each value),
with a 95% interval where the log-likelihood falls 1.92 below its maximum. The records used are
biallelic, with a normal read, and either PASS or failing only filters that read the normal
(germline, normal_artifact, low_normal_depth): those failing for the tumour's own reads
(weak_evidence, strand_bias, orientation_bias, panel_of_normals, contamination, ...) are left
out. The tumour's fraction strays from its cells' by its reads' sampling (sqrt(f (1 - f) / N)
at the tumour's median depth N): the somatic kind averages over that (TUMOUR_NODES points);
a caller's threshold selecting fractions read high is not modelled (a 60x tumour's TiN of 0.2
reads about 0.19), nor are copy-number changes between the tumour cells in the normal and
those of the tumour sample.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import numpy as np
import pysam

from gmsaccel import _core
from gmsaccel.contamination import CHI2_95, _bound, _maximise, golden_section

# the chance that a read of the normal counted for one allele is the other's, where its fit
# starts when there are too few homozygous sites to measure it
ERROR = 1e-3
MIN_HOM_SITES = 10  # sites homozygous for the allele that start the error rate's search
MIN_ERROR, MAX_ERROR = 1e-5, 0.05  # the error rate's range
MIN_HET_SITES = 10  # sites near 1/2 in both samples that measure a heterozygote's share
OTHER_PRIOR = 1.0  # pseudo-count of sites of the "other" kind per band
MAX_FRACTION = 0.95  # the estimate's range: a "normal" beyond it is the tumour
MIN_SITES = 10  # candidate alleles an estimate needs
FRACTION_STEP = 5e-3  # tumour fractions are taken to this step (their own spread is wider)
BANDS = 10  # of the tumour fraction, each with its own shares of the kinds of site
HET_BAND = (0.25, 0.75)  # a normal's share of the reads at sites measuring h...
HET_TUMOUR_BAND = (0.35, 0.65)  # ...where the tumour's is here
# heterozygotes' allele balance more concentrated across sites than this (Beta(k h, k (1 - h)),
# a spread below 0.05% at h 1/2) is taken as the same at every site: binomial
MAX_CONCENTRATION = 1e6
SPREAD_SITES = 5000  # heterozygous sites (at most, evenly taken) that fit the concentration
TUMOUR_NODES = 5  # points of the tumour fraction's spread the somatic kind averages over
# auto models an estimate up to this: beyond it, a normal holding more of the tumour's cells
# than half the tumour sample's, or one whose germline sites or shared artifacts read alike in
# both samples (which the somatic kind at a TiN near 1 also explains), is for the user to judge
AUTO_LIMIT = 0.5
# filters that weigh the normal's reads (and with a germline resource the population): a
# record failing only these is still the tumour's allele
NORMAL_FILTERS = frozenset({"PASS", "germline", "normal_artifact", "low_normal_depth"})
# (a heterozygous site twice: as the tumour's cells show it in the normal, and balanced)
KINDS = ("somatic", "germline_het_changed", "germline_het", "germline_hom", "other")


@dataclass
class TumourInNormalEstimate:
    """What estimate_tumour_in_normal found: the share of a somatic allele's tumour fraction
    the normal shows, its 95% interval, the candidate alleles used, the normal's reads over
    them, and how many of them each kind of site takes (the fitted shares times the sites)."""

    fraction: float
    low: float
    high: float
    sites: int
    normal_reads: int
    somatic: float = 0.0
    germline_het: float = 0.0
    germline_hom: float = 0.0
    other: float = 0.0
    error_rate: float = ERROR  # the normal's read error rate at the estimate
    # the spread (standard deviation) of heterozygotes' allele balance across sites, which
    # both samples share (capture and mapping bias; 0: none beyond the reads' own)
    het_spread: float = 0.0

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def excludes_zero(self) -> bool:
        """Whether the interval leaves out a normal free of the tumour."""
        return self.low > 0

    def to_model(self) -> tuple[float, str]:
        """What --tumour-in-normal auto models (0: nothing) and why."""
        if not self.excludes_zero():
            return 0.0, "the normal shows no tumour (an interval holding 0)"
        if self.error_rate >= MAX_ERROR:
            return 0.0, (f"the normal's reads show the other allele at {100 * MAX_ERROR:g}% or "
                         "more (the error rate's limit): too noisy to tell its reads of "
                         "somatic alleles from errors; not modelled (give --tumour-in-normal F "
                         "to model it)")
        if self.fraction > AUTO_LIMIT:
            return 0.0, (f"{100 * self.fraction:.1f}% is beyond {100 * AUTO_LIMIT:g}%: a normal "
                         "mostly tumour, or alleles both samples show alike (germline sites "
                         "or artifacts); not modelled (give --tumour-in-normal F to model it)")
        return self.fraction, f"calling again with {self.fraction:.4g}"

    def line(self) -> str:
        return (f"tumour in normal {100 * self.fraction:.2f}% (95% interval "
                f"{100 * self.low:.2f}-{100 * self.high:.2f}%) from {self.sites:,} candidate "
                f"alleles (about {self.somatic:,.0f} somatic, {self.germline_het:,.0f} "
                f"heterozygous and {self.germline_hom:,.0f} homozygous germline, "
                f"{self.other:,.0f} other; {self.normal_reads:,} normal reads, "
                f"{100 * self.error_rate:.2g}% read as the other allele"
                + (f", heterozygotes' allele balance spread {100 * self.het_spread:.1f}% by site"
                   if self.het_spread > 0 else "") + ")")


_lgamma = np.vectorize(math.lgamma, otypes=[np.float64])


def _log_comb(alt: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """log (depth choose alt), by site."""
    return _lgamma(depth + 1) - _lgamma(alt + 1) - _lgamma(depth - alt + 1)


def _log_beta(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _lgamma(a) + _lgamma(b) - _lgamma(a + b)


class _Sites:
    """The candidate alleles' evidence, with what does not depend on TiN worked out once."""

    def __init__(self, tumour_fraction: np.ndarray, alt: np.ndarray, depth: np.ndarray,
                 tumour_alt: np.ndarray | None = None, tumour_depth: np.ndarray | None = None):
        f = np.asarray(tumour_fraction, dtype=np.float64)
        alt = np.asarray(alt, dtype=np.float64)
        depth = np.asarray(depth, dtype=np.float64)
        if (tumour_alt is None) != (tumour_depth is None):
            raise ValueError("tumour_alt and tumour_depth go together")
        t_alt = np.zeros_like(f) if tumour_alt is None else \
            np.asarray(tumour_alt, dtype=np.float64)
        t_depth = np.zeros_like(f) if tumour_depth is None else \
            np.asarray(tumour_depth, dtype=np.float64)
        if not (f.shape == alt.shape == depth.shape == t_alt.shape == t_depth.shape) or \
                f.ndim != 1:
            raise ValueError("tumour_fraction, alt and depth (and tumour_alt and tumour_depth): "
                             "one value per site each")
        counts_ok = all(np.all((a >= 0) & (a <= n) & (a == np.round(a)) & np.isfinite(n)
                               & (n == np.round(n))) for a, n in ((alt, depth), (t_alt, t_depth)))
        if not counts_ok or not np.all((f >= 0) & (f <= 1)):  # (NaN fails both)
            raise ValueError("each site needs whole read counts 0 <= alt <= depth and a tumour "
                             "fraction in [0, 1]")
        self.sites = len(f)
        # Sites alike (the tumour fraction to FRACTION_STEP) are weighed once, times their
        # number: a genome's germline sites repeat a few thousand combinations.
        keys = np.stack([np.round(f / FRACTION_STEP), alt, depth], axis=1)
        rows, counts = np.unique(keys, axis=0, return_counts=True)
        self.f = rows[:, 0] * FRACTION_STEP
        self.alt, self.depth = rows[:, 1], rows[:, 2]
        self.weight = counts.astype(np.float64)
        # (where the first fit's search for the error rate starts; each later one starts at
        # the last one's, as the shares do). Without MIN_HOM_SITES homozygous sites to pin
        # it, e is held at ERROR: somatic sites of one clone read e + TiN f alike for any
        # split of their reads between e and TiN, and a fitted e took most of TiN.
        self.error = _error_rate(f, alt, depth)
        self.fit_error = _homozygous_sites(f, alt, depth).sum() >= MIN_HOM_SITES
        self.prior = np.zeros(len(KINDS))
        self.prior[KINDS.index("other")] = OTHER_PRIOR
        self.het = _het_share(f, alt, depth)
        self.concentration = _het_concentration(f, alt, depth, t_alt, t_depth, self.het)
        self.comb = _log_comb(self.alt, self.depth)
        # sites x kinds log-likelihoods; the somatic, changed heterozygote's and homozygous
        # kinds' depend on the error rate (and the first two on TiN): _fill fills them
        self.terms = np.empty((len(self.f), len(KINDS)))
        self.node_logs: dict[int, np.ndarray] = {}  # (_fill's, by column)
        self.terms[:, 2] = self._balanced_heterozygote(t_depth)
        self.tumour_nodes = self._tumour_nodes(t_depth)
        self.terms[:, 4] = -np.log(self.depth + 1)  # a binomial's fraction uniform on [0, 1]
        # Shares by band of the tumour fraction: germline alleles gather at the fractions
        # their copy numbers give, somatic ones at their clones'. One set of shares for all
        # would let the somatic kind take germline sites where TiN * f comes near 1/2 (a
        # larger share of somatic sites is then cheaper for every somatic site), pulling TiN
        # up to that.
        used, self.band = np.unique(np.minimum((self.f * BANDS).astype(np.int64), BANDS - 1),
                                    return_inverse=True)  # (bands holding sites only)
        self.rows_by_band = [np.flatnonzero(self.band == b) for b in range(len(used))]
        self.shares = np.full((len(used), len(KINDS)), 1 / len(KINDS))

    def binomial(self, p: np.ndarray | float) -> np.ndarray:
        """log P(alt | depth, p), by site."""
        return self.comb + self.alt * np.log(p) + (self.depth - self.alt) * np.log1p(-p)

    def het_spread(self) -> float:
        """The standard deviation of heterozygotes' allele balance across sites."""
        return math.sqrt(self.het * (1 - self.het) / (self.concentration + 1))

    def _tumour_nodes(self, tumour_depth: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """The somatic allele's fraction in the tumour, as the normal's reads are averaged
        over it: the tumour's f, read from a typical depth N (the median), strays from the
        cells' by sqrt(f (1 - f) / N), and where the normal is deep that spreads its reads of
        the allele wider than a binomial at TiN f (on a panel, TiN 0.8's interval held it 5
        times in 10). TUMOUR_NODES points of a normal distribution of that spread
        (Gauss-Hermite), clipped to [0, 1]; f alone without the tumour's depths."""
        reads = _typical_depth(tumour_depth)
        if reads == 0:
            return [(1.0, self.f)]
        spread = np.sqrt(self.f * (1 - self.f) / reads)
        z, w = np.polynomial.hermite_e.hermegauss(TUMOUR_NODES)
        return [(float(wi / w.sum()), np.clip(self.f + zi * spread, 0.0, 1.0))
                for zi, wi in zip(z, w, strict=True)]

    def _balanced_heterozygote(self, tumour_depth: np.ndarray) -> np.ndarray:
        """log P(alt | depth) at a germline heterozygote the tumour left as it was: binomial at
        h where its allele balance is the same at every site; else beta-binomial, the site's
        balance Beta(k h, k (1 - h)) updated by the tumour's reads of it (both samples' cells
        carry it: a deep panel's capture bias shows in both), taken as a typical tumour depth
        (the median) times its fraction (the sites' own depths would multiply the distinct
        sites the fit weighs)."""
        if not math.isfinite(self.concentration):
            return self.binomial(self.het)
        reads = _typical_depth(tumour_depth)
        a = self.concentration * self.het + reads * self.f
        b = self.concentration * (1 - self.het) + reads * (1 - self.f)
        return self.comb + _log_beta(a + self.alt, b + self.depth - self.alt) - _log_beta(a, b)

    def _fractions(self, tin: float,
                   e: float) -> list[tuple[int, list[tuple[float, np.ndarray, np.ndarray]]]]:
        """The kinds whose fraction of the allele's reads depends on e: each one's column and
        the points its likelihood averages over (weight, fraction by site, its derivative in
        e). The somatic kind's are the tumour fraction's spread (_tumour_nodes)."""
        tumour_cells = e + (1 - 2 * e) * self.f  # (as their reads show the allele)
        ones = np.full(len(self.f), 1.0)
        return [
            (0, [(w, e + (1 - 2 * e) * tin * x, 1 - 2 * tin * x)  # (TiN x of 0)
                 for w, x in self.tumour_nodes]),
            # a heterozygote the tumour changed: the normal's own cells at h (which its reads
            # show: their errors in it), its tumour cells as the tumour's reads
            (1, [(1.0, (1 - tin) * self.het + tin * tumour_cells, tin * (1 - 2 * self.f))]),
            (3, [(1.0, (1 - e) * ones, -ones)]),
        ]

    def _fill(self, tin: float, e: float) -> None:
        """The terms that depend on TiN and e, each the log of its nodes' weighted binomials;
        the nodes' own logs kept (node_logs, by column) for _error_derivatives."""
        self.node_logs = {}
        for column, nodes in self._fractions(tin, e):
            logs = np.stack([math.log(w) + self.binomial(p) for w, p, _ in nodes])
            top = logs.max(axis=0)
            self.terms[:, column] = top + np.log(np.exp(logs - top).sum(axis=0))
            self.node_logs[column] = logs

    def _mixture(self) -> tuple[np.ndarray, np.ndarray, float]:
        """The kinds' likelihoods (sites x kinds, scaled by site), each site's mixture of them
        under its band's shares, and the log-likelihood (the shares' pseudo-counts left out)."""
        top = self.terms.max(axis=1, keepdims=True)
        lik = np.exp(self.terms - top)
        mix = np.einsum("ik,ik->i", lik, self.shares[self.band])
        return lik, mix, float(self.weight @ (top[:, 0] + np.log(mix)))

    def _error_derivatives(self, tin: float, e: float, lik: np.ndarray,
                           mix: np.ndarray) -> tuple[float, float]:
        """The log-likelihood's first and second derivatives in e, the shares held, with the
        terms filled at (tin, e) and _mixture's lik and mix of them."""
        ref = self.depth - self.alt
        post = lik * self.shares[self.band] / mix[:, None]  # (the kinds' posteriors)
        slope, curve = np.zeros(len(self.f)), np.zeros(len(self.f))
        for column, nodes in self._fractions(tin, e):
            # (each node's derivatives of its binomial's log, weighed by its share of the
            # column's likelihood)
            d1_mean, d2_mean = np.zeros(len(self.f)), np.zeros(len(self.f))
            for (_, p, dp), logs in zip(nodes, self.node_logs[column], strict=True):
                share = np.exp(logs - self.terms[:, column])
                d1 = (self.alt / p - ref / (1 - p)) * dp
                d2 = -(self.alt / p ** 2 + ref / (1 - p) ** 2) * dp ** 2
                d1_mean += share * d1
                d2_mean += share * (d1 * d1 + d2)
            slope += post[:, column] * d1_mean
            curve += post[:, column] * d2_mean
        return float(self.weight @ slope), float(self.weight @ (curve - slope * slope))

    def _error_step(self, tin: float, e: float) -> float:
        """The error rate maximising the likelihood at TiN with the shares as they are
        (Newton's method on e, each step halved until it gains), from the terms as filled at
        (TiN, e), and filled at the one returned."""
        lik, mix, value = self._mixture()
        for _ in range(30):
            grad, hess = self._error_derivatives(tin, e, lik, mix)
            # (where the curvature is not negative, a step of a tenth of e the gradient's way)
            step = -grad / hess if hess < 0 else math.copysign(0.1 * e, grad)
            a = 1.0
            while True:
                nxt = min(max(e + a * step, MIN_ERROR), MAX_ERROR)
                self._fill(tin, nxt)
                got = self._mixture()
                if got[2] >= value or a < 1e-4:
                    break
                a /= 2
            if got[2] < value:  # (no gain: e stands)
                self._fill(tin, e)
                return e
            moved = abs(nxt - e)
            e, (lik, mix, value) = nxt, got
            if moved <= 1e-9 * e:
                break
        return e

    def fit(self, tin: float) -> tuple[float, np.ndarray, float]:
        """The log-likelihood at TiN (with the shares' pseudo-counts), profiled over the error
        rate and the kinds' shares in each band of the tumour fraction: the shares and e in
        turn, each at the other's best, until the likelihood stops rising; the kinds'
        expected counts over all sites; and e."""
        e = self.error
        self._fill(tin, e)
        last = -math.inf
        for _ in range(100):
            ll, counts = self._fit_shares()
            if ll - last <= 1e-10 * max(1.0, abs(ll)):
                break
            last = ll
            if not self.fit_error:
                break
            e = self._error_step(tin, e)
        self.error = e
        return ll, counts, e

    def _fit_shares(self) -> tuple[float, np.ndarray]:
        """The log-likelihood with the kinds' shares fitted in each band (from the last ones)
        for the terms as filled, and the kinds' expected counts over all sites."""
        top = self.terms.max(axis=1, keepdims=True)
        lik = np.exp(self.terms - top)  # sites x kinds, scaled by site
        ll = float(self.weight @ top[:, 0])
        counts = np.zeros(len(KINDS))
        for b, rows in enumerate(self.rows_by_band):
            lb, wb = lik[rows], self.weight[rows]
            share, value = _mixture_shares(lb, wb, self.prior, self.shares[b])
            self.shares[b] = share
            ll += value
            counts += (lb * share).T @ (wb / (lb @ share))
        return ll, counts


def _typical_depth(tumour_depth: np.ndarray) -> float:
    """The tumour's median depth over the sites it was read at (0 where none was)."""
    read = tumour_depth[tumour_depth > 0]
    return float(np.median(read)) if len(read) else 0.0


def _homozygous_sites(f: np.ndarray, alt: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Sites where the normal and the tumour show the allele in 90% of the reads or more."""
    return (f >= 0.9) & (alt >= 0.9 * depth) & (depth > 0)


def _error_rate(f: np.ndarray, alt: np.ndarray, depth: np.ndarray) -> float:
    """The normal's reads of the reference at sites where it and the tumour show the allele
    in 90% of the reads or more (homozygous: those reads are errors), per read: where the
    error rate's fit starts."""
    hom = _homozygous_sites(f, alt, depth)
    if hom.sum() < MIN_HOM_SITES:
        return ERROR
    return float(np.clip((depth - alt)[hom].sum() / depth[hom].sum(), 1e-4, 0.05))


def _het_sites(f: np.ndarray, alt: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Sites taken as balanced heterozygotes: the tumour's fraction within HET_TUMOUR_BAND and
    the normal's share within HET_BAND."""
    share = np.divide(alt, depth, out=np.zeros_like(alt), where=depth > 0)
    return (f >= HET_TUMOUR_BAND[0]) & (f <= HET_TUMOUR_BAND[1]) & (share >= HET_BAND[0]) & \
        (share <= HET_BAND[1])


def _het_share(f: np.ndarray, alt: np.ndarray, depth: np.ndarray) -> float:
    """A heterozygote's share of the normal's reads: pooled over _het_sites; 1/2 where fewer
    than MIN_HET_SITES such sites."""
    het = _het_sites(f, alt, depth)
    if het.sum() < MIN_HET_SITES:
        return 0.5
    return float(np.clip(alt[het].sum() / depth[het].sum(), 0.3, 0.7))


def _het_concentration(f: np.ndarray, alt: np.ndarray, depth: np.ndarray, tumour_alt: np.ndarray,
                       tumour_depth: np.ndarray, het: float) -> float:
    """k of heterozygotes' allele balance Beta(k het, k (1 - het)) across sites, shared by the
    tumour's reads and the normal's, by maximum likelihood over _het_sites (SPREAD_SITES of
    them at most, evenly taken); inf (the same balance at every site: binomial) where there
    are fewer than MIN_HET_SITES, or where the binomial (MAX_CONCENTRATION) is within the 95%
    interval (at a genome's 30x, site-to-site spread the reads barely show would otherwise
    come and go by chance)."""
    rows = np.flatnonzero(_het_sites(f, alt, depth))
    if len(rows) < MIN_HET_SITES:
        return math.inf
    rows = rows[np.linspace(0, len(rows) - 1, min(len(rows), SPREAD_SITES)).astype(np.int64)]
    a = alt[rows] + tumour_alt[rows]
    r = depth[rows] - alt[rows] + tumour_depth[rows] - tumour_alt[rows]

    def ll(log_k: float) -> float:
        k = math.exp(log_k)
        return float(np.sum(_log_beta(k * het + a, k * (1 - het) + r))) - \
            len(a) * float(_log_beta(np.array(k * het), np.array(k * (1 - het))))

    top = math.log(MAX_CONCENTRATION)
    best = _maximise(ll, 0.0, top, tol=1e-3, grid=20)
    return math.inf if ll(best) - ll(top) < CHI2_95 / 2 else math.exp(best)


def _mixture_shares(lik: np.ndarray, weight: np.ndarray, prior: np.ndarray,
                    start: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """The shares s (on the simplex) maximising sum_i weight_i log(lik_i . s) + sum_j prior_j
    log s_j (pseudo-counts), and that maximum. It is concave; its maximum is the maximum over
    s >= 0 of the same less (sum(weight) + sum(prior)) * sum(s), where sum(s) comes out 1:
    Newton's method on that, kinds whose share is 0 and would fall held at 0 (and those the
    step takes below 0 that would fall sent to 0), each step projected onto s >= 0 and halved
    until it gains; where that takes it below 1/64 of a step (a kind at 0 that should not be,
    or kinds alike, can stall it), share moved from the kind the gradient favours least to
    the one it favours most, if that gains more."""
    k = lik.shape[1]
    total = float(weight.sum() + prior.sum())
    held = prior > 0
    share = np.full(k, 1 / k)
    if start is not None:  # (a kind held by its pseudo-count is never started at 0)
        share = np.where(held, np.maximum(start, 1e-6), start)
        share = share / share.sum()

    def objective(s: np.ndarray) -> float:
        mix = lik @ s
        if np.any(mix <= 0) or np.any(s[held] <= 0):
            return -math.inf
        return float(weight @ np.log(mix) + prior[held] @ np.log(s[held])) - \
            total * float(s.sum())

    value = objective(share)
    for _ in range(500):
        mix = lik @ share
        r = weight / mix
        inv = np.divide(prior, share, out=np.zeros(k), where=held)
        grad = lik.T @ r + inv - total
        curv = (lik * (r / mix)[:, None]).T @ lik + np.diag(inv / np.where(held, share, 1.0))
        free = (share > 0) | (grad > 0)
        step = np.zeros(k)
        for _ in range(2):  # (kinds the step takes below 0 that would fall: sent to 0, and
            # the step solved again for the rest)
            idx = np.flatnonzero(free)
            sub = curv[np.ix_(idx, idx)]
            # (a kind no site of the band looks like has no curvature: the ridge sends it to 0)
            sub = sub + 1e-10 * max(float(np.max(np.diag(sub))), 1e-300) * np.eye(len(idx))
            step[:] = 0.0
            step[idx] = np.linalg.lstsq(sub, grad[idx], rcond=None)[0]
            falls = free & ~held & ((share + step < 0) | (share < 1e-9)) & (grad < 0)
            if not falls.any():
                break
            free &= ~falls
        zeroed = ~free & (share > 0)
        step[zeroed] = -share[zeroed]
        a = 1.0  # (the step projected onto s >= 0, halved until it gains)
        while True:
            nxt = np.maximum(share + a * step, 0.0)
            got = objective(nxt)
            if got >= value or a < 1e-6:
                break
            a /= 2
        newton = got > value and a >= 1 / 64
        if not newton:  # (a short or failed step: share moved between two kinds, which
            # can bring back a kind at 0 or empty one, where it gains more)
            toward, toward_value = _pairwise_step(objective, share, grad,
                                                  1e-12 * max(1.0, abs(value)))
            if toward_value > got:
                nxt, got = toward, toward_value
        if not got > value:
            break
        gain = got - value
        share, value = nxt, got
        if gain <= 1e-12 * max(1.0, abs(value)) and (not newton or a == 1.0):
            break
    share = share / share.sum()
    mix = lik @ share
    return share, float(weight @ np.log(mix) + prior[held] @ np.log(share[held]))


def _pairwise_step(objective: Callable[[np.ndarray], float], share: np.ndarray,
                   grad: np.ndarray, min_gain: float = 0.0) -> tuple[np.ndarray, float]:
    """Share moved from the kind the gradient favours least (of those holding any) to the one
    it favours most, by the amount best for the objective (concave along it: golden-section
    search), and its value; -inf where the most it could gain (all the share moved at the
    gradient's rate: concave) is min_gain or less, as at the maximum."""
    best = int(np.argmax(grad))
    holding = np.flatnonzero(share > 0)
    worst = int(holding[np.argmin(grad[holding])])
    if best == worst or share[worst] * (grad[best] - grad[worst]) <= min_gain:
        return share, -math.inf
    move = np.zeros_like(share)
    move[best], move[worst] = 1.0, -1.0

    def at(t: float) -> float:
        return objective(np.maximum(share + t * move, 0.0))

    lo, hi = golden_section(at, 0.0, float(share[worst]), 1e-12 + 1e-9 * share[worst])
    t = max((lo, hi, (lo + hi) / 2), key=at)  # (the end: all of the worst kind's share)
    return np.maximum(share + t * move, 0.0), at(t)


def estimate(tumour_fraction: np.ndarray, alt: np.ndarray, depth: np.ndarray,
             tumour_alt: np.ndarray | None = None,
             tumour_depth: np.ndarray | None = None) -> TumourInNormalEstimate:
    """TiN (the share of a somatic allele's tumour fraction that the normal shows) by maximum
    likelihood from candidate alleles: each one's fraction in the tumour, and the normal's
    reads of it (alt) of its depth (its reads of the allele and the reference), and where
    known the tumour's (which show how far heterozygotes' allele balance strays by site); with
    its 95% interval."""
    sites = _Sites(tumour_fraction, alt, depth, tumour_alt, tumour_depth)
    if sites.sites < MIN_SITES:
        raise ValueError(f"{sites.sites} candidate alleles with normal reads: too few to "
                         f"estimate the tumour in the normal (at least {MIN_SITES})")

    fits: dict[float, tuple[float, np.ndarray, float]] = {}  # (the search asks for some TiN twice)

    def fit(tin: float) -> tuple[float, np.ndarray, float]:
        if tin not in fits:
            fits[tin] = sites.fit(tin)
        return fits[tin]

    def ll(tin: float) -> float:
        return fit(tin)[0]

    # (a grid of 0.05 steps, then to 1e-5: a share far finer than its interval)
    best = _maximise(ll, 0.0, MAX_FRACTION, tol=1e-5, grid=20)
    target = ll(best) - CHI2_95 / 2
    low = 0.0 if best == 0 else _bound(ll, target, best, 0.0)
    high = _bound(ll, target, best, MAX_FRACTION)
    _, counts, error = fit(best)
    somatic, changed, het, hom, other = (float(x) for x in counts)
    return TumourInNormalEstimate(best, low, high, sites.sites,
                                  int(sites.weight @ sites.depth), somatic, changed + het, hom,
                                  other, error, sites.het_spread())


def _one_value(value: object) -> float | None:
    if isinstance(value, tuple):
        value = value[0] if len(value) == 1 else None
    return None if value is None else float(value)  # type: ignore[arg-type]


def _records(fh: pysam.VariantFile, path: str) -> Iterator[pysam.VariantRecord]:
    """fh's records; one htslib cannot parse is an InputError naming the file and the record
    before it."""
    last = "the header"
    records = iter(fh)
    while True:
        try:
            rec = next(records)
        except StopIteration:
            return
        except (OSError, ValueError) as e:
            raise _core.InputError(f"{path}: the record after {last}: {e}") from None
        last = f"{rec.chrom}:{rec.pos}"
        yield rec


def candidate_evidence(vcf: str | os.PathLike, tumour: str | None = None,
                       normal: str | None = None) -> tuple[np.ndarray, ...]:
    """From a somatic VCF (gmsaccel's, or any whose samples have AD, and AF or enough AD):
    each usable record's tumour fraction, the normal's reads of the allele and its depth, and
    the tumour's (0 and 0 where its AD is missing), as estimate takes them.
    The tumour and normal are the header's ##tumor_sample and ##normal_sample unless named."""
    path = os.fspath(vcf)
    try:
        fh = pysam.VariantFile(path)
    except (OSError, ValueError) as e:
        raise _core.InputError(f"{path}: cannot read as a VCF ({e})") from None
    with fh:
        meta = {r.key: r.value for r in fh.header.records if r.value is not None}
        samples = list(fh.header.samples)
        tumour = tumour or meta.get("tumor_sample")
        normal = normal or meta.get("normal_sample")
        for role, name in (("tumour", tumour), ("normal", normal)):
            if name is None:
                raise _core.InputError(f"{path}: no {role} sample named (the header has no "
                                       f"##{'tumor' if role == 'tumour' else role}_sample)")
            if name not in samples:
                raise _core.InputError(f"{path}: no sample {name!r} (its samples: "
                                       f"{', '.join(samples) or 'none'})")
        if "AD" not in fh.header.formats:
            raise _core.InputError(f"{path}: no FORMAT AD (each sample's reads of each allele), "
                                   "which the estimate needs")
        columns: list[list[float]] = [[], [], [], [], []]
        for rec in _records(fh, path):
            if len(rec.alts or ()) != 1 or not set(rec.filter.keys()) <= NORMAL_FILTERS:
                continue
            t, n = rec.samples[tumour], rec.samples[normal]
            try:
                n_ad, t_ad = n.get("AD"), t.get("AD")
                t_af = _one_value(t.get("AF")) if "AF" in rec.format else None
            except (KeyError, ValueError, TypeError) as e:
                raise _core.InputError(f"{path}: record {rec.chrom}:{rec.pos}: {e}") from None
            if n_ad is None or len(n_ad) != 2 or None in n_ad:
                continue
            if t_ad is None or len(t_ad) != 2 or None in t_ad:
                t_ad = None
            if t_af is None:  # (a VCF without AF: the tumour's read counts)
                if t_ad is None or sum(t_ad) == 0:
                    continue
                t_af = t_ad[1] / sum(t_ad)
            if not 0 <= t_af <= 1 or min(n_ad) < 0 or (t_ad is not None and min(t_ad) < 0):
                raise _core.InputError(f"{path}: record {rec.chrom}:{rec.pos}: AF {t_af} or "
                                       f"AD {n_ad} / {t_ad} out of range")
            if sum(n_ad) == 0:
                continue
            t_alt, t_depth = (t_ad[1], sum(t_ad)) if t_ad is not None else (0, 0)
            for column, value in zip(columns, (t_af, n_ad[1], sum(n_ad), t_alt, t_depth),
                                     strict=True):
                column.append(value)
    return tuple(np.array(column, dtype=np.float64) for column in columns)


def estimate_tumour_in_normal(vcf: str | os.PathLike, tumour: str | None = None,
                              normal: str | None = None) -> TumourInNormalEstimate:
    """TiN from a tumour/normal somatic VCF called with none assumed (candidate_evidence, then
    estimate): give the result to Caller(somatic=True, tumour_in_normal=...) to call again."""
    evidence = candidate_evidence(vcf, tumour, normal)
    try:
        return estimate(*evidence)
    except ValueError as e:
        raise _core.InputError(f"{os.fspath(vcf)}: {e}") from None


def vcf_tumour_in_normal(vcf: str | os.PathLike) -> float:
    """The TiN a somatic VCF was called with (its header's ##tumour_in_normal; none: 0)."""
    with pysam.VariantFile(os.fspath(vcf)) as fh:
        for r in fh.header.records:
            if r.key == "tumour_in_normal" and r.value is not None:
                return float(r.value)
    return 0.0
