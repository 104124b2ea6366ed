"""Tumour in the normal (tumour_in_normal.py): the estimate on candidate sites drawn from its own
model with a known TiN, the mixture shares against plain EM, the error rate from homozygous
sites, the likelihood against a site-by-site computation (identical sites weighed once), the
candidate alleles read from small somatic VCFs, and the TiN a VCF header records."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np
import pysam
import pysam.bcftools
import pytest
from conftest import run_cli

from gmsaccel import _core
from gmsaccel.tumour_in_normal import (
    AUTO_LIMIT,
    BANDS,
    ERROR,
    FRACTION_STEP,
    MAX_ERROR,
    MIN_HET_SITES,
    MIN_HOM_SITES,
    MIN_SITES,
    OTHER_PRIOR,
    TUMOUR_NODES,
    TumourInNormalEstimate,
    _error_rate,
    _het_concentration,
    _mixture_shares,
    _Sites,
    candidate_evidence,
    estimate,
    estimate_tumour_in_normal,
    vcf_tumour_in_normal,
)

SIM_ERROR = 2e-3  # the normal's read error rate in the simulations
SOMATIC_FRACTIONS = (0.3, 0.15, 0.08, 0.04)


@functools.cache
def simulate(tin: float, seed: int, somatic: int = 300, het: int = 1000, hom: int = 200,
             odd: int = 50) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate sites drawn from the model: somatic alleles at tumour fractions of a few
    clones, seen in the normal at TiN * f through the error rate; germline heterozygous ones
    near 1/2 in the tumour and at 1/2 in the normal; homozygous ones at 1 - e; and odd sites
    at a fraction uniform on [0, 1]. Normal depth Poisson(30) + 1."""
    rng = np.random.default_rng(seed)
    f_som = rng.choice(SOMATIC_FRACTIONS, somatic)
    f_het = np.clip(rng.normal(0.5, 0.05, het), 0.3, 0.7)
    f_hom = rng.uniform(0.9, 1.0, hom)
    f_odd = rng.uniform(0.05, 0.95, odd)
    p = np.concatenate([SIM_ERROR + (1 - 2 * SIM_ERROR) * tin * f_som, np.full(het, 0.5),
                        np.full(hom, 1 - SIM_ERROR), rng.uniform(0, 1, odd)])
    f = np.concatenate([f_som, f_het, f_hom, f_odd])
    depth = rng.poisson(30, len(f)) + 1
    alt = rng.binomial(depth, p)
    return f, alt.astype(np.float64), depth.astype(np.float64)


@functools.cache
def simulated_estimate(tin: float, seed: int) -> TumourInNormalEstimate:
    return estimate(*simulate(tin, seed))


# --- the estimate on simulated sites ------------------------------------------------------


SEEDS = 4  # per TiN: each estimate takes a second or so


def seed(tin: float, i: int) -> int:
    return 100 * i + int(1000 * tin)


@pytest.mark.parametrize("tin", [0.05, 0.2, 0.4])
def test_interval_holds_the_truth(tin: float) -> None:
    results = [simulated_estimate(tin, seed(tin, i)) for i in range(SEEDS)]
    held = sum(r.low <= tin <= r.high for r in results)
    assert held >= SEEDS - 1, [(r.low, r.high) for r in results]
    for r in results:
        assert r.low <= r.fraction <= r.high
        # (the estimate's spread is about 0.007, 0.014 and 0.02 at TiN 0.05, 0.2 and 0.4)
        assert abs(r.fraction - tin) <= 0.015 + 0.15 * tin, r
        # (about 1,550 sites: the interval is a few points wide, not the whole range)
        assert r.high - r.low < 0.1
        assert r.excludes_zero()
        assert r.sites == 1550
        # the kinds' expected counts share out the sites, near the numbers drawn
        kinds = np.array([r.somatic, r.germline_het, r.germline_hom, r.other])
        assert kinds.sum() == pytest.approx(r.sites, rel=1e-9)
        assert kinds[0] == pytest.approx(300, abs=30)
        assert kinds[1] == pytest.approx(1000, abs=40)
        assert kinds[2] == pytest.approx(200, abs=20)


def test_no_tumour_in_normal() -> None:
    """At TiN 0 the interval reaches 0 (all but one seed of four: one of them leaves it out,
    as 2 of 60 seeds did in a longer run), and stays below 2.5%."""
    results = [simulated_estimate(0.0, seed(0.0, i)) for i in range(SEEDS)]
    assert sum(r.low == 0 for r in results) >= SEEDS - 1, [r.low for r in results]
    for r in results:
        assert r.excludes_zero() == (r.low > 0)
        if r.low == 0:
            assert not r.excludes_zero()
        assert 0 <= r.fraction <= 0.015
        assert 0 < r.high < 0.025
        assert r.somatic == pytest.approx(300, abs=30)


def test_tumour_in_normal_excludes_zero() -> None:
    """At TiN 0.2 every seed's interval leaves out a clean normal, well clear of 0."""
    for i in range(SEEDS):
        r = simulated_estimate(0.2, seed(0.2, i))
        assert r.excludes_zero()
        assert r.low > 0.1
    assert "tumour in normal" in r.line() and "1,550 candidate alleles" in r.line()
    assert r.as_dict()["fraction"] == r.fraction


def test_point_is_the_likelihood_maximum() -> None:
    """The point estimate beats every TiN of a grid, and the bounds sit where the
    log-likelihood is 1.92 below it."""
    data = simulate(0.2, 200)
    r = simulated_estimate(0.2, 200)
    sites = _Sites(*data)
    best = sites.fit(r.fraction)[0]
    grid = [sites.fit(float(t))[0] for t in np.linspace(0, 0.95, 20)]
    assert best >= max(grid) - 1e-9
    for bound in (r.low, r.high):
        assert sites.fit(bound)[0] == pytest.approx(best - 3.841458820694124 / 2, abs=1e-3)


# --- the mixture shares against EM --------------------------------------------------------


def mixture_objective(lik: np.ndarray, weight: np.ndarray, prior: np.ndarray,
                      share: np.ndarray) -> float:
    """sum_i w_i log(lik_i . s) + sum_j prior_j log s_j (kinds without a prior left out)."""
    held = prior > 0
    with np.errstate(divide="ignore"):
        return float(weight @ np.log(lik @ share) + prior[held] @ np.log(share[held]))


def em_shares(lik: np.ndarray, weight: np.ndarray, prior: np.ndarray,
              iterations: int = 20000) -> np.ndarray:
    """Plain EM, the prior as pseudo-counts."""
    k = lik.shape[1]
    share = np.full(k, 1 / k)
    total = weight.sum() + prior.sum()
    for _ in range(iterations):
        share = (share * (lik.T @ (weight / (lik @ share))) + prior) / total
    return share


def random_mixture(case: int) -> tuple[np.ndarray, np.ndarray]:
    """Likelihoods as fit() gives them (scaled to 1 per site; some kinds far from a site, a
    kind at times far from all), and whole weights. (Bands of 5 distinct sites or more: with
    fewer, see test_mixture_shares_few_sites.)"""
    rng = np.random.default_rng(case)
    n = int(rng.integers(5, 60))
    terms = rng.uniform(-rng.uniform(1, 12), 0, (n, 4))
    if case % 3 == 0:  # (a kind no site looks like)
        terms[:, rng.integers(0, 3)] -= 800
    lik = np.exp(terms - terms.max(axis=1, keepdims=True))
    return lik, rng.integers(1, 30, n).astype(np.float64)


@pytest.mark.parametrize("prior", [np.array([0, 0, 0, OTHER_PRIOR]), np.zeros(4),
                                   np.array([0.5, 0, 2.0, 1.0])], ids=["other", "none", "mixed"])
def test_mixture_shares_is_the_maximum(prior: np.ndarray) -> None:
    rng = np.random.default_rng(7)
    for case in range(15):
        lik, weight = random_mixture(case)
        share, value = _mixture_shares(lik, weight, prior)
        assert np.all(share >= 0) and share.sum() == pytest.approx(1, abs=1e-12)
        assert value == pytest.approx(mixture_objective(lik, weight, prior, share),
                                      rel=1e-12, abs=1e-12)
        em = em_shares(lik, weight, prior, 5000)
        em_value = mixture_objective(lik, weight, prior, em)
        assert value >= em_value - 1e-8, (case, share, em)
        assert value - em_value < 1e-4  # (EM got there too)
        # no point of the simplex beats it: random ones and ones near it
        points = np.concatenate([rng.dirichlet(np.ones(4), 200),
                                 np.abs(share + rng.normal(0, 1e-3, (200, 4)))])
        points /= points.sum(axis=1, keepdims=True)
        for point in points:
            assert mixture_objective(lik, weight, prior, point) <= value + 1e-9


def test_mixture_shares_many_sites() -> None:
    """A band of a genome's size: a few thousand distinct rows, weights in the thousands."""
    rng = np.random.default_rng(3)
    truth = np.array([0.1, 0.6, 0.25, 0.05])
    kind = rng.choice(4, 3000, p=truth)
    terms = rng.uniform(-30, -5, (3000, 4))
    terms[np.arange(3000), kind] = rng.uniform(-2, 0, 3000)
    lik = np.exp(terms - terms.max(axis=1, keepdims=True))
    weight = rng.integers(1, 2000, 3000).astype(np.float64)
    prior = np.array([0, 0, 0, OTHER_PRIOR])
    share, value = _mixture_shares(lik, weight, prior)
    em = em_shares(lik, weight, prior, 2000)
    assert value >= mixture_objective(lik, weight, prior, em) - 1e-6
    np.testing.assert_allclose(share, em, atol=1e-6)
    # (near the kinds the sites were drawn from)
    expected = np.bincount(kind, weights=weight, minlength=4) / weight.sum()
    np.testing.assert_allclose(share, expected, atol=5e-3)


def test_mixture_shares_few_sites() -> None:
    """One site (of weight 10) at f 0.45, 9 of 10 normal reads: the "other" kind explains it
    best at any TiN (its likelihood 1/11; no homozygous sites, so the error rate is held at
    ERROR and the homozygous kind's is 10 * 0.999^9 * 0.001), so the band's log-likelihood is
    flat. (A projected Newton step once stalled here at 3/4 homozygous, 12.8 short.)"""
    sites = _Sites(np.full(10, 0.45), np.full(10, 9.0), np.full(10, 10.0))
    flat = 10 * -math.log(11)
    for tin in (0.0, 0.3, 0.6, 0.7, 0.9):
        got, _, e = sites.fit(tin)
        assert e == ERROR and got == pytest.approx(flat, abs=1e-6), tin


# --- the error rate -----------------------------------------------------------------------


def test_error_rate_from_homozygous_sites() -> None:
    rng = np.random.default_rng(11)
    n = 40
    depth = rng.integers(20, 60, n).astype(np.float64)
    ref = rng.binomial(depth.astype(np.int64), 0.01).astype(np.float64)
    f = rng.uniform(0.9, 1.0, n)
    # sites that are not homozygous in both: the tumour below 0.9, or the normal's allele
    # below 0.9 of its reads (a heterozygote), or no normal reads
    f_other = np.array([0.5, 0.85, 0.95, 0.99, 0.95])
    alt_other = np.array([40.0, 40.0, 20.0, 5.0, 0.0])
    depth_other = np.array([40.0, 40.0, 40.0, 10.0, 0.0])
    got = _error_rate(np.concatenate([f, f_other]), np.concatenate([depth - ref, alt_other]),
                      np.concatenate([depth, depth_other]))
    assert got == pytest.approx(ref.sum() / depth.sum(), rel=1e-12)
    assert got != ERROR
    # the normal's allele at exactly 0.9 of its reads counts
    got = _error_rate(np.append(f, 0.9), np.append(depth - ref, 9.0), np.append(depth, 10.0))
    assert got == pytest.approx((ref.sum() + 1) / (depth.sum() + 10), rel=1e-12)


def test_error_rate_falls_back_with_few_sites() -> None:
    depth = np.full(MIN_HOM_SITES, 50.0)
    alt = depth - 2  # (4% errors: far from ERROR)
    f = np.full(MIN_HOM_SITES, 0.97)
    assert _error_rate(f, alt, depth) == pytest.approx(0.04)
    assert _error_rate(f[1:], alt[1:], depth[1:]) == ERROR
    # homozygous sites in the tumour only do not count
    assert _error_rate(np.append(f[1:], 0.97), np.append(alt[1:], 25.0),
                       np.append(depth[1:], 50.0)) == ERROR
    # no reference reads at all: a rate above 0 all the same (the hom kind's binomial needs it)
    assert 0 < _error_rate(f, depth, depth) < 1e-3


def test_error_rate_is_profiled() -> None:
    """A clean normal whose few homozygous sites happen to show no errors: taken from them
    alone, the error rate (clipped at 1e-4) would leave the somatic sites' error reads to a
    TiN above 0, the interval leaving 0 out. Fitted with TiN, the rate takes them, the same
    at every tumour fraction, as errors are."""
    rng = np.random.default_rng(8)
    f = np.concatenate([rng.choice([0.3, 0.15, 0.08], 300), np.full(12, 0.95),
                        np.full(100, 0.5)])
    depth = np.full(len(f), 30.0)
    alt = np.concatenate([rng.binomial(30, SIM_ERROR, 300), np.full(12, 30),
                          rng.binomial(30, 0.5, 100)]).astype(np.float64)
    assert alt[:300].sum() >= 10  # (the somatic sites' error reads)
    assert _error_rate(f, alt, depth) < 2e-4
    r = estimate(f, alt, depth)
    assert r.low == 0 and not r.excludes_zero() and r.fraction < 0.01, r
    assert 0.5 * SIM_ERROR < r.error_rate < 2 * SIM_ERROR, r


def test_error_rate_held_without_homozygous_sites() -> None:
    """Somatic sites of one clone read e + TiN f alike for any split of their reads between
    the error rate and TiN: without MIN_HOM_SITES homozygous sites to pin it, e is held at
    ERROR (fitted, it took most of TiN: 11 of 20 intervals held 0.1, the mean 0.042)."""
    rng = np.random.default_rng(12)
    n_som, n_het = 300, 300
    results = []
    for _ in range(6):
        f = np.concatenate([np.full(n_som, 0.3), np.full(n_het, 0.5)])
        depth = (rng.poisson(30, len(f)) + 1).astype(np.float64)
        p = np.concatenate([np.full(n_som, SIM_ERROR + (1 - 2 * SIM_ERROR) * 0.1 * 0.3),
                            np.full(n_het, 0.5)])
        alt = rng.binomial(depth.astype(np.int64), p).astype(np.float64)
        results.append(estimate(f, alt, depth))
    assert all(r.error_rate == ERROR for r in results)
    assert sum(r.low <= 0.1 <= r.high for r in results) >= 5, results
    assert abs(np.mean([r.fraction for r in results]) - 0.1) < 0.015
    # with homozygous sites enough, it is fitted
    hom = np.full(MIN_HOM_SITES, 0.97)
    r = estimate(np.concatenate([f, hom]), np.concatenate([alt, np.full(MIN_HOM_SITES, 29.0)]),
                 np.concatenate([depth, np.full(MIN_HOM_SITES, 30.0)]))
    assert r.error_rate != ERROR


def test_a_normal_too_noisy_is_not_modelled() -> None:
    """An error rate at its limit (MAX_ERROR) leaves the normal's reads of somatic alleles
    to TiN: auto models nothing then."""
    est = TumourInNormalEstimate(0.05, 0.02, 0.07, 500, 15000, error_rate=MAX_ERROR)
    share, why = est.to_model()
    assert share == 0.0 and "too noisy" in why
    est.error_rate = 0.9 * MAX_ERROR
    assert est.to_model()[0] == 0.05


@pytest.mark.parametrize("tin", [0.0, 0.15, 0.6])
def test_error_derivatives(tin: float) -> None:
    """The error rate's Newton step: the log-likelihood's first and second derivatives in e
    (shares held) against central differences, the somatic kind averaged over the tumour
    fraction's spread (tumour depths given) and not."""
    f, alt, depth = simulate(0.2, 6, somatic=150, het=300, hom=60, odd=30)
    t_depth = np.full(len(f), 60.0)
    for sites in (_Sites(f, alt, depth, np.round(f * 60), t_depth), _Sites(f, alt, depth)):
        sites.fit(tin)  # (shares fitted)
        for e in (5e-4, 2e-3, 1e-2):
            sites._fill(tin, e)
            lik, mix, _ = sites._mixture()
            grad, hess = sites._error_derivatives(tin, e, lik, mix)
            h = 1e-3 * e

            def ll(x: float, s: _Sites = sites) -> float:
                s._fill(tin, x)
                return s._mixture()[2]

            lo, mid, hi = ll(e - h), ll(e), ll(e + h)
            assert grad == pytest.approx((hi - lo) / (2 * h), rel=1e-4, abs=1e-3)
            assert hess == pytest.approx((hi - 2 * mid + lo) / h ** 2, rel=1e-3)


def test_tumour_nodes() -> None:
    """The points the somatic kind averages the tumour fraction over: weights summing to 1,
    their mean f and their spread sqrt(f (1 - f) / N) at the tumour's median depth N (where
    none is clipped at 0 or 1); f alone without the tumour's depths."""
    f = np.array([0.3, 0.5, 0.15])
    t_depth = np.array([400.0, 500.0, 900.0])
    sites = _Sites(f, np.array([3.0, 5.0, 1.0]), np.array([100.0, 100.0, 100.0]),
                   np.round(f * t_depth), t_depth)
    nodes = sites._tumour_nodes(t_depth)
    assert len(nodes) == TUMOUR_NODES
    w = np.array([wi for wi, _ in nodes])
    x = np.stack([xi for _, xi in nodes])
    assert w.sum() == pytest.approx(1.0) and np.all(w > 0)
    np.testing.assert_allclose(w @ x, sites.f)
    np.testing.assert_allclose(np.sqrt(w @ (x - sites.f) ** 2),
                               np.sqrt(sites.f * (1 - sites.f) / 500))
    alone = sites._tumour_nodes(np.zeros(3))
    assert len(alone) == 1 and alone[0][0] == 1.0


# --- the likelihood, site by site ---------------------------------------------------------


def direct_log_likelihood(tin: float, e: float, f: np.ndarray, alt: np.ndarray,
                          depth: np.ndarray) -> float:
    """The model written out site by site, identical sites not merged, at an error rate e: a
    heterozygote's share from the sites near 1/2 in both samples, the five kinds' binomials,
    shares by tenth of the tumour fraction fitted by EM with OTHER_PRIOR pseudo-counts of
    "other"."""
    near = (f >= 0.35) & (f <= 0.65) & (alt >= 0.25 * depth) & (alt <= 0.75 * depth)
    h = alt[near].sum() / depth[near].sum()
    assert near.sum() >= 10 and 0.3 < h < 0.7
    fr = np.round(f / FRACTION_STEP) * FRACTION_STEP
    comb = np.array([math.lgamma(n + 1) - math.lgamma(a + 1) - math.lgamma(n - a + 1)
                     for a, n in zip(alt, depth, strict=True)])

    def binomial(p: np.ndarray | float) -> np.ndarray:
        return comb + alt * np.log(p) + (depth - alt) * np.log(1 - p)

    def seen(frac: np.ndarray | float) -> np.ndarray | float:
        return e + (1 - 2 * e) * frac

    # somatic; heterozygous as the tumour's cells show it, and balanced; homozygous; other
    terms = np.stack([binomial(seen(tin * fr)), binomial(h * (1 - tin) + tin * seen(fr)),
                      binomial(h), binomial(1 - e), -np.log(depth + 1)], axis=1)
    band = np.minimum((fr * BANDS).astype(np.int64), BANDS - 1)
    prior = np.array([0, 0, 0, 0, OTHER_PRIOR])
    total = 0.0
    for b in np.unique(band):
        t = terms[band == b]
        top = t.max(axis=1, keepdims=True)
        lik = np.exp(t - top)
        weight = np.ones(len(t))
        share = em_shares(lik, weight, prior, 30000)
        total += float(top.sum()) + mixture_objective(lik, weight, prior, share)
    return total


def test_likelihood_is_its_definition_with_sites_repeated() -> None:
    """Identical sites are weighed once, times their number: the likelihood of the data (and
    of the data twice over) equals the one summed site by site at the error rate fit gives,
    and that rate is the best: a rate 2% either side of it, or the homozygous sites' own
    measure, gives less. (At a TiN below the truth's the rate rises to take some of the
    normal's reads of somatic alleles, as far as the homozygous sites let it; above, it
    falls.)"""
    f, alt, depth = simulate(0.2, 1, somatic=150, het=300, hom=60, odd=30)
    twice = tuple(np.concatenate([x, x]) for x in (f, alt, depth))
    for data in ((f, alt, depth), twice):
        sites = _Sites(*data)
        assert sites.weight.sum() == len(data[0]) and len(sites.weight) < len(data[0])
        measured = _error_rate(*data)
        for tin in (0.0, 0.1, 0.2, 0.35):
            got, _, e = sites.fit(tin)
            if tin == 0.2:  # (the truth)
                assert 0.4 * SIM_ERROR < e < 2.5 * SIM_ERROR
            want = direct_log_likelihood(tin, e, *data)
            assert got >= want - 1e-6
            assert got == pytest.approx(want, abs=1e-3)
            if data[0] is f and tin in (0.0, 0.2):  # (each EM takes a second)
                for other in (0.98 * e, 1.02 * e, measured):
                    assert direct_log_likelihood(tin, other, *data) < got


def test_estimate_ignores_order_and_counts_raw_sites() -> None:
    f, alt, depth = simulate(0.2, seed(0.2, 0))
    once = simulated_estimate(0.2, seed(0.2, 0))
    order = np.random.default_rng(5).permutation(len(f))
    assert estimate(f[order], alt[order], depth[order]) == once
    twice = estimate(*(np.concatenate([x, x[order]]) for x in (f, alt, depth)))
    assert twice.sites == 2 * len(f) == 2 * once.sites
    assert twice.normal_reads == int(2 * depth.sum()) == 2 * once.normal_reads
    # twice the evidence: about the same point, an interval about 1/sqrt(2) as wide
    assert twice.fraction == pytest.approx(once.fraction, abs=0.01)
    ratio = (twice.high - twice.low) / (once.high - once.low)
    assert 0.6 < ratio < 0.85


# --- invalid input ------------------------------------------------------------------------


def test_estimate_needs_min_sites() -> None:
    f = np.full(MIN_SITES - 1, 0.3)
    with pytest.raises(ValueError, match="too few"):
        estimate(f, np.full(MIN_SITES - 1, 1.0), np.full(MIN_SITES - 1, 30.0))
    r = estimate(np.full(MIN_SITES, 0.3), np.full(MIN_SITES, 1.0), np.full(MIN_SITES, 30.0))
    assert r.sites == MIN_SITES and r.normal_reads == 30 * MIN_SITES


@pytest.mark.parametrize("bad", ["alt_over_depth", "negative_alt", "nan_fraction", "inf_fraction",
                                 "fractional_reads", "lengths", "two_dimensional",
                                 "tumour_alt_alone", "tumour_alt_over_depth",
                                 "tumour_lengths", "fraction_over_1", "negative_fraction",
                                 "inf_depth"])
def test_estimate_rejects_invalid_input(bad: str) -> None:
    f, alt, depth = (x.copy() for x in simulate(0.1, 3, somatic=20, het=20, hom=12, odd=0))
    tumour: dict[str, np.ndarray] = {"tumour_alt": np.round(f * 60),
                                     "tumour_depth": np.full(len(f), 60.0)}
    estimate(f, alt, depth, **tumour)  # (as they are: fine)
    if bad == "tumour_alt_alone":
        del tumour["tumour_depth"]
    elif bad == "tumour_alt_over_depth":
        tumour["tumour_alt"][3] = 61
    elif bad == "tumour_lengths":
        tumour["tumour_depth"] = tumour["tumour_depth"][:-1]
    elif bad == "fraction_over_1":
        f[5] = 1.01
    elif bad == "negative_fraction":
        f[5] = -0.01
    elif bad == "inf_depth":
        depth[5] = np.inf
    elif bad == "alt_over_depth":
        alt[5] = depth[5] + 1
    elif bad == "negative_alt":
        alt[5] = -1
    elif bad == "nan_fraction":
        f[5] = np.nan
    elif bad == "inf_fraction":
        f[5] = np.inf
    elif bad == "fractional_reads":
        alt[5] = 0.5
    elif bad == "lengths":
        depth = depth[:-1]
    else:
        f, alt, depth = (np.stack([x, x]) for x in (f, alt, depth))
        tumour = {}
    with pytest.raises(ValueError):
        estimate(f, alt, depth, **tumour)


# --- candidate alleles from a VCF ---------------------------------------------------------


def write_vcf(path: Path, records: list[tuple], tumour_line: bool = True,
              normal_line: bool = True, extra: tuple[str, ...] = ()) -> Path:
    """A somatic VCF with samples N and T; each record (pos, alts, filters, tumour AD, tumour
    AF or None, normal AD)."""
    header = pysam.VariantHeader()
    header.add_line("##contig=<ID=chr1,length=100000>")
    if tumour_line:
        header.add_line("##tumor_sample=T")
    if normal_line:
        header.add_line("##normal_sample=N")
    for line in extra:
        header.add_line(line)
    for name in ("germline", "normal_artifact", "low_normal_depth", "weak_evidence",
                 "strand_bias"):
        header.add_line(f'##FILTER=<ID={name},Description="{name}">')
    header.add_line('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
    header.add_line('##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">')
    header.add_line('##FORMAT=<ID=AF,Number=A,Type=Float,Description="Allele fraction">')
    for sample in ("N", "T"):
        header.add_sample(sample)
    with pysam.VariantFile(str(path), "w", header=header) as out:
        for pos, alts, filters, t_ad, t_af, n_ad in records:
            rec = out.new_record(contig="chr1", start=pos - 1, alleles=("A", *alts))
            for name in filters:
                rec.filter.add(name)
            rec.samples["T"]["GT"] = (0, 1)
            if t_ad is not None:
                rec.samples["T"]["AD"] = t_ad
            if t_af is not None:
                rec.samples["T"]["AF"] = t_af
            rec.samples["N"]["GT"] = (0, 0)
            rec.samples["N"]["AD"] = n_ad
            out.write(rec)
    return path


# (pos, alts, filters, tumour AD, tumour AF, normal AD); AFs exact in a float32
RECORDS = [
    (100, ("C",), ["PASS"], (30, 10), 0.375, (40, 2)),  # kept: AF, not AD's 0.25
    (200, ("G",), [], (10, 10), 0.5, (14, 16)),  # kept: no filter (".")
    (300, ("T",), ["germline"], (0, 20), 1.0, (1, 29)),  # kept
    (400, ("C",), ["normal_artifact"], (20, 20), 0.5, (10, 5)),  # kept
    (500, ("C",), ["germline", "low_normal_depth"], (20, 5), 0.25, (3, 1)),  # kept
    (600, ("C",), ["weak_evidence"], (20, 20), 0.5, (20, 20)),  # the tumour's own filter
    (700, ("C",), ["germline", "strand_bias"], (20, 20), 0.5, (20, 20)),  # likewise
    (800, ("C", "G"), ["PASS"], (20, 10, 10), (0.25, 0.25), (20, 1, 1)),  # multi-allelic
    (900, ("C",), ["PASS"], (20, 20), 0.5, (0, 0)),  # no normal reads
    (1000, ("C",), ["PASS"], (16, 4), None, (30, 3)),  # no AF: the tumour's AD, 4 / 20
    (1100, ("C",), ["PASS"], (16, 4), 0.125, (30, 3)),  # AF 0.125 over AD's 0.2
    (1200, ("C",), ["PASS"], None, 0.25, (30, 3)),  # no tumour AD: its reads 0 of 0
]


def test_candidate_evidence_keeps_records_the_normal_filtered(tmp_path: Path) -> None:
    vcf = write_vcf(tmp_path / "somatic.vcf", RECORDS)
    f, alt, depth, t_alt, t_depth = evidence = candidate_evidence(vcf)
    np.testing.assert_array_equal(f, [0.375, 0.5, 1.0, 0.5, 0.25, 0.2, 0.125, 0.25])
    np.testing.assert_array_equal(alt, [2, 16, 29, 5, 1, 3, 3, 3])
    np.testing.assert_array_equal(depth, [42, 30, 30, 15, 4, 33, 33, 33])
    np.testing.assert_array_equal(t_alt, [10, 10, 20, 20, 5, 4, 4, 0])
    np.testing.assert_array_equal(t_depth, [40, 20, 20, 40, 25, 20, 20, 0])
    assert all(x.dtype == np.float64 for x in evidence)
    # a compressed copy reads the same
    gz = tmp_path / "somatic.vcf.gz"
    pysam.tabix_compress(str(vcf), str(gz))
    for got, want in zip(candidate_evidence(str(gz)), evidence, strict=True):
        np.testing.assert_array_equal(got, want)


def test_candidate_evidence_samples_named(tmp_path: Path) -> None:
    """Named samples override the header's: with the roles swapped, the normal's fractions
    are AD's (N has no AF) and the reads counted are the tumour's."""
    vcf = write_vcf(tmp_path / "somatic.vcf", RECORDS[:2])
    f, alt, depth, t_alt, t_depth = candidate_evidence(vcf, tumour="N", normal="T")
    np.testing.assert_allclose(f, [2 / 42, 16 / 30])
    np.testing.assert_array_equal(alt, [10, 10])
    np.testing.assert_array_equal(depth, [40, 20])
    np.testing.assert_array_equal(t_alt, [2, 16])
    np.testing.assert_array_equal(t_depth, [42, 30])
    # naming the header's own samples changes nothing
    for got, want in zip(candidate_evidence(vcf, tumour="T", normal="N"),
                         candidate_evidence(vcf), strict=True):
        np.testing.assert_array_equal(got, want)
    # a VCF without the header lines, samples named
    bare = write_vcf(tmp_path / "bare.vcf", RECORDS[:2], tumour_line=False, normal_line=False)
    np.testing.assert_array_equal(candidate_evidence(bare, "T", "N")[0], [0.375, 0.5])


def test_candidate_evidence_errors(tmp_path: Path) -> None:
    no_normal = write_vcf(tmp_path / "no_normal.vcf", RECORDS[:2], normal_line=False)
    with pytest.raises(_core.InputError, match="normal") as info:
        candidate_evidence(no_normal)
    assert str(no_normal) in str(info.value)
    # (with the normal named, it reads)
    assert len(candidate_evidence(no_normal, normal="N")[0]) == 2
    no_tumour = write_vcf(tmp_path / "no_tumour.vcf", RECORDS[:2], tumour_line=False)
    with pytest.raises(_core.InputError, match="tumo"):
        candidate_evidence(no_tumour)
    vcf = write_vcf(tmp_path / "somatic.vcf", RECORDS[:2])
    with pytest.raises(_core.InputError, match="'X'") as info:
        candidate_evidence(vcf, normal="X")
    assert str(vcf) in str(info.value)
    with pytest.raises(_core.InputError, match="'Y'"):
        candidate_evidence(vcf, tumour="Y")
    text = tmp_path / "notes.txt"
    text.write_text("not a VCF\nat all\n")
    with pytest.raises(_core.InputError) as info:
        candidate_evidence(text)
    assert str(text) in str(info.value)
    with pytest.raises(_core.InputError) as info:
        candidate_evidence(tmp_path / "missing.vcf")
    assert "missing.vcf" in str(info.value)
    out_of_range = write_vcf(tmp_path / "range.vcf", [(100, ("C",), [], (10, 10), 1.5, (5, 5))])
    with pytest.raises(_core.InputError, match="out of range"):
        candidate_evidence(out_of_range)


def test_estimate_from_vcf(tmp_path: Path) -> None:
    """estimate_tumour_in_normal is estimate over the VCF's candidate alleles; too few of
    them raise ValueError."""
    f, alt, depth = simulate(0.2, 4, somatic=60, het=60, hom=20, odd=0)
    records = simulated_records(0.2, 4)
    vcf = write_vcf(tmp_path / "somatic.vcf", records)
    got_f, got_alt, got_depth, t_alt, t_depth = candidate_evidence(vcf)
    np.testing.assert_array_equal(got_f, [r[4] for r in records])
    np.testing.assert_array_equal(got_alt, alt)
    np.testing.assert_array_equal(got_depth, depth)
    np.testing.assert_array_equal(t_alt, [r[3][1] for r in records])
    np.testing.assert_array_equal(t_depth, [sum(r[3]) for r in records])
    got = estimate_tumour_in_normal(vcf)
    assert got.sites == len(f) and got.normal_reads == int(depth.sum())
    assert got.low <= got.fraction <= got.high and got.excludes_zero()
    assert got.fraction == pytest.approx(0.2, abs=0.08)
    assert got.somatic == pytest.approx(60, abs=15)
    few = write_vcf(tmp_path / "few.vcf", records[:MIN_SITES - 1])
    with pytest.raises(ValueError, match="too few"):
        estimate_tumour_in_normal(few)


def simulated_records(tin: float, seed: int) -> list[tuple]:
    """write_vcf's records for simulate's sites at TiN (germline filtered above a tumour
    fraction of 0.35, as a caller would; the tumour's AF exact in a float32)."""
    f, alt, depth = simulate(tin, seed, somatic=60, het=60, hom=20, odd=0)
    records = []
    for i, (fi, a, n) in enumerate(zip(f, alt.tolist(), depth.tolist(), strict=True)):
        a, n = int(a), int(n)
        t_alt = max(1, round(float(fi) * 64))
        records.append((100 * (i + 1), ("C",), ["germline"] if fi > 0.35 else ["PASS"],
                        (64 - t_alt, t_alt), t_alt / 64, (n - a, a)))
    return records


def simulated_vcf(path: Path, tin: float, seed: int, extra: tuple[str, ...] = ()) -> Path:
    return write_vcf(path, simulated_records(tin, seed), extra=extra)


def test_cli(tmp_path: Path) -> None:
    """gmsaccel tumour-in-normal VCF: one tab-separated line (VCF, TiN, low, high, sites), the
    summary and what to call again with on stderr, the estimate as JSON; the samples can be
    named; bad input is a one-line error naming the file, and no JSON."""
    vcf = simulated_vcf(tmp_path / "somatic.vcf", 0.2, 4)
    est = estimate_tumour_in_normal(vcf)
    out = tmp_path / "tin.json"
    proc = run_cli("tumour-in-normal", vcf, "--json", out)
    assert proc.returncode == 0, proc.stderr.decode()
    fields = proc.stdout.decode().rstrip("\n").split("\t")
    assert fields[0] == str(vcf) and int(fields[4]) == est.sites
    assert [float(x) for x in fields[1:4]] == pytest.approx([est.fraction, est.low, est.high],
                                                            abs=1e-5)
    err = proc.stderr.decode()
    assert est.line() in err and f"--tumour-in-normal {est.fraction:.4g}" in err, err
    got = json.loads(out.read_text())
    assert {k: got[k] for k in est.as_dict()} == est.as_dict()
    assert got["called_with"] == 0.0 and got["auto_models"] == est.fraction
    # quiet: the line alone; samples named as in the header change nothing
    proc = run_cli("tumour-in-normal", "-q", "--tumour", "T", "--normal", "N", vcf)
    assert proc.returncode == 0 and proc.stderr == b""
    assert proc.stdout.decode().rstrip("\n").split("\t")[1:] == fields[1:]
    # a VCF called with a TiN: a warning (its records are not what the estimate reads)
    called = simulated_vcf(tmp_path / "called.vcf", 0.2, 4, extra=("##tumour_in_normal=0.2",))
    proc = run_cli("tumour-in-normal", called)
    assert proc.returncode == 0 and b"was called with --tumour-in-normal 0.2" in proc.stderr
    # a clean normal: nothing to model
    clean = simulated_vcf(tmp_path / "clean.vcf", 0.0, 5)
    proc = run_cli("tumour-in-normal", clean)
    assert proc.returncode == 0 and b"would model none" in proc.stderr, proc.stderr
    # bad input
    lines = vcf.read_text().splitlines()
    body = next(i for i, line in enumerate(lines) if not line.startswith("#")) + 3
    broken = tmp_path / "broken.vcf"
    cut = lines[body].split("\t")
    broken.write_text("\n".join([*lines[:body], "\t".join([cut[0], "x1", *cut[2:]]),
                                 *lines[body + 1:]]) + "\n")
    prior = lines[body - 1].split("\t")
    for bad, why in ((tmp_path / "missing.vcf", "cannot read"),
                     (broken, f"after {prior[0]}:{prior[1]}"),
                     (write_vcf(tmp_path / "germline.vcf", RECORDS[:2], tumour_line=False),
                      "no tumour sample")):
        proc = run_cli("tumour-in-normal", bad, "--json", out.with_name("bad.json"))
        err = proc.stderr.decode()
        assert proc.returncode == 1 and str(bad) in err and why in err, err
        assert len(err.strip().splitlines()) == 1 and proc.stdout == b""
        assert not out.with_name("bad.json").exists()
    proc = run_cli("tumour-in-normal", "-q", vcf, "--tumour", "X")
    assert proc.returncode == 1 and b"'X'" in proc.stderr
    few = write_vcf(tmp_path / "few.vcf", RECORDS)
    proc = run_cli("tumour-in-normal", few)
    assert proc.returncode == 1 and b"too few" in proc.stderr and str(few).encode() in proc.stderr
    proc = run_cli("tumour-in-normal", "-", stdin=vcf.read_bytes())
    assert proc.returncode == 1 and b"standard input" in proc.stderr
    no_ad = tmp_path / "no_ad.vcf"
    no_ad.write_text(pysam.bcftools.annotate("-x", "FORMAT/AD", str(few)))  # (bundled)
    proc = run_cli("tumour-in-normal", no_ad)
    assert proc.returncode == 1 and b"no FORMAT AD" in proc.stderr, proc.stderr


# --- the TiN a VCF was called with --------------------------------------------------------


def test_vcf_tumour_in_normal(tmp_path: Path) -> None:
    called = write_vcf(tmp_path / "called.vcf", RECORDS[:1], extra=("##tumour_in_normal=0.21",))
    assert vcf_tumour_in_normal(called) == 0.21
    assert vcf_tumour_in_normal(str(called)) == 0.21
    plain = write_vcf(tmp_path / "plain.vcf", RECORDS[:1])
    assert vcf_tumour_in_normal(plain) == 0.0


# --- a tumour that lost or gained a germline copy; what auto models -------------------------


def deep_panel(tin: float, seed: int, spread: float) -> tuple[np.ndarray, ...]:
    """A panel's sites: the tumour read 500 times, the normal 1,000; heterozygotes' allele
    balance N(1/2, spread) by site, the same in both samples (capture bias); 150 somatic, 800
    heterozygous and 200 homozygous sites. As estimate takes them, with the tumour's reads."""
    rng = np.random.default_rng(seed)
    f_som = rng.choice([0.3, 0.15, 0.08], 150)
    balance = np.clip(rng.normal(0.5, spread, 800), 0.05, 0.95)
    in_tumour = np.concatenate([f_som, balance, np.ones(200)])
    in_normal = np.concatenate([tin * f_som, balance, np.ones(200)])
    t_alt = rng.binomial(500, SIM_ERROR + (1 - 2 * SIM_ERROR) * in_tumour).astype(np.float64)
    alt = rng.binomial(1000, SIM_ERROR + (1 - 2 * SIM_ERROR) * in_normal).astype(np.float64)
    n = len(alt)
    return t_alt / 500, alt, np.full(n, 1000.0), t_alt, np.full(n, 500.0)


@pytest.mark.parametrize("tin", [0.0, 0.1])
def test_deep_panel_allele_balance(tin: float) -> None:
    """On a deep panel heterozygotes' allele balance strays by site, alike in both samples;
    a binomial at one share for all read the normal's heterozygotes, tracking the tumour's
    fractions, as the somatic kind at a TiN near 0.93. With the spread fitted and the tumour's
    reads of each site taken in, the estimate holds the truth and reads the spread."""
    data = deep_panel(tin, 31, 0.05)
    r = estimate(*data)
    assert r.low <= tin <= r.high and r.high - r.low < 0.01, r
    assert r.het_spread == pytest.approx(0.05, rel=0.15), r
    assert r.somatic == pytest.approx(150, abs=5) and r.other < 10, r
    # (no spread: the binomial, as at a genome's 30x; 1 of 40 seeds read one, by chance)
    flat = estimate(*deep_panel(tin, 33, 0.0))
    assert flat.low <= tin <= flat.high and flat.het_spread == 0.0, flat


def test_het_concentration() -> None:
    """The heterozygotes' allele balance Beta(k h, k (1 - h)) shared by both samples: k by
    maximum likelihood from the sites near 1/2 (within 25% of the truth over 3,000 sites);
    inf for a balance the same at every site, and for fewer than MIN_HET_SITES sites."""
    rng = np.random.default_rng(41)
    n, h, k = 3000, 0.48, 200.0
    balance = rng.beta(k * h, k * (1 - h), n)
    t_depth = rng.integers(100, 400, n).astype(np.float64)
    depth = rng.integers(200, 800, n).astype(np.float64)
    t_alt = rng.binomial(t_depth.astype(np.int64), balance).astype(np.float64)
    alt = rng.binomial(depth.astype(np.int64), balance).astype(np.float64)
    f = t_alt / t_depth
    got = _het_concentration(f, alt, depth, t_alt, t_depth, h)
    assert got == pytest.approx(k, rel=0.25)
    flat_t = rng.binomial(t_depth.astype(np.int64), h).astype(np.float64)
    flat = rng.binomial(depth.astype(np.int64), h).astype(np.float64)
    assert _het_concentration(flat_t / t_depth, flat, depth, flat_t, t_depth, h) == math.inf
    few = slice(0, MIN_HET_SITES - 1)
    assert _het_concentration(f[few], alt[few], depth[few], t_alt[few], t_depth[few],
                              h) == math.inf


def test_balanced_heterozygote_is_the_beta_binomial() -> None:
    """The heterozygous kind's likelihood with a spread: the normal's reads binomial at the
    site's balance, integrated over Beta(k h, k (1 - h)) updated by the tumour's median depth
    times its fraction, computed here by numerical integration."""
    f = np.array([0.3, 0.45, 0.5, 0.62, 0.9])
    alt = np.array([80.0, 190.0, 260.0, 300.0, 10.0])
    depth = np.array([400.0, 420.0, 500.0, 480.0, 30.0])
    t_depth = np.array([300.0, 500.0, 200.0, 700.0, 0.0])  # (median of those read: 400)
    sites = _Sites(f, alt, depth, np.round(f * t_depth), t_depth)
    sites.concentration, sites.het = 150.0, 0.47
    got = sites._balanced_heterozygote(t_depth)
    x = np.linspace(0, 1, 400_001)[1:-1]
    for i in range(len(sites.f)):
        fi, a, n = sites.f[i], sites.alt[i], sites.depth[i]
        pa = 150 * 0.47 + 400 * fi
        pb = 150 * 0.53 + 400 * (1 - fi)
        log_prior = (pa - 1) * np.log(x) + (pb - 1) * np.log1p(-x)
        log_lik = a * np.log(x) + (n - a) * np.log1p(-x)
        top = max(log_prior.max(), (log_prior + log_lik).max())
        ratio = np.sum(np.exp(log_prior + log_lik - top)) / np.sum(np.exp(log_prior - top))
        want = math.lgamma(n + 1) - math.lgamma(a + 1) - math.lgamma(n - a + 1) + \
            math.log(ratio)
        assert got[i] == pytest.approx(want, abs=1e-6), i
    # the same balance at every site: the binomial at h
    sites.concentration = math.inf
    np.testing.assert_allclose(sites._balanced_heterozygote(t_depth), sites.binomial(0.47))


def test_heterozygotes_the_tumour_changed() -> None:
    """Germline heterozygotes the tumour has lost a copy of (its fraction near 0.95): the
    normal's tumour cells show that too, at (1 - TiN) / 2 + TiN f. Read as the somatic kind
    they would pull TiN up to about 0.65; the changed heterozygote's kind keeps it."""
    tin = 0.3
    rng = np.random.default_rng(21)
    f, alt, depth = (x.copy() for x in simulate(tin, 21))
    f_loh = np.full(300, 0.95)
    d_loh = rng.poisson(30, 300) + 1.0
    a_loh = rng.binomial(d_loh.astype(np.int64),
                         SIM_ERROR + (1 - 2 * SIM_ERROR) * ((1 - tin) * 0.5 + tin * f_loh))
    r = estimate(np.concatenate([f, f_loh]), np.concatenate([alt, a_loh]),
                 np.concatenate([depth, d_loh]))
    assert r.low <= tin <= r.high and abs(r.fraction - tin) < 0.04, r


@pytest.mark.parametrize(("fraction", "low", "modelled"), [
    (0.0, 0.0, 0.0),  # an interval holding 0
    (0.02, 0.0, 0.0),
    (0.2, 0.15, 0.2),
    (0.5, 0.45, 0.5),
    (0.92, 0.9, 0.0),  # beyond AUTO_LIMIT: for the user to judge
])
def test_what_auto_models(fraction: float, low: float, modelled: float) -> None:
    est = TumourInNormalEstimate(fraction, low, min(fraction + 0.05, 0.95), 100, 3000)
    share, why = est.to_model()
    assert share == modelled and why
    assert (share > 0) == (low > 0 and fraction <= AUTO_LIMIT)
