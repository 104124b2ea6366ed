"""Cross-sample contamination: the fraction of a sample's reads that come from another person
(`gmsaccel contamination`, `estimate_contamination`).

A contaminated sample shows, at sites where it is homozygous, the other allele in a fraction of
its reads that grows with the contamination and with how common that allele is in the
population; at heterozygous sites it pulls the allele fraction away from 1/2. So at common SNVs
of a germline resource (population frequency p in [min_af, max_af]) the reference and
alternate read counts are weighed, site by site, under every pair of genotypes the sample and
one contaminating person may have there (each in Hardy-Weinberg proportions from p): the
expected alternate fraction is (1 - c) g/2 + c h/2 for the sample's genotype g and the
contaminant's h (a heterozygote's 1/2 as the reads show it: alignment's reference bias is
measured at the heterozygous sites), seen through the sequencing error rate, which is measured
from the same sites' reads of the two bases that are neither allele. The fraction c
maximising the likelihood over all sites is the estimate, with a 95% interval where the
log-likelihood falls 1.92 below its maximum (the profile likelihood's chi-square bound).

Sites far deeper than the median (collapsed repeats, copy-number gains) or with fewer than
MIN_DEPTH reads are left out, and so are those where the resource has a second common allele or
a third base shows in more reads than errors make (a private variant, a misplaced paralog), as
their reads would raise the error rate; reads and bases pass the Caller's filters (mapping
quality and base quality at least MIN_QUALITY by default). The interval takes the resource's
frequencies as exact; where the estimate is 0 it is in effect a one-sided 97.5% bound.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np

from gmsaccel import _core
from gmsaccel.alleles import sites_file

MIN_AF, MAX_AF = 0.01, 0.99  # resource SNVs used: common in the population
MIN_QUALITY = 20  # mapping and base quality of the reads counted
MIN_DEPTH = 8  # reference and alternate reads a site needs
MAX_DEPTH_RATIO = 3.0  # sites deeper than this times the median are left out
MAX_FRACTION = 0.5  # beyond it the "contaminant" is the sample
MIN_OTHER_AF = 1e-3  # a site with a second allele this common is left out
THIRD_BASE_SHARE = 0.05  # a site where a third base has this share of the reads (and 2) too
MAX_SITES = 250_000  # shards are read until they hold this many sites
HET_BAND = (0.25, 0.75)  # sites whose alternate share is here count as heterozygous...
MIN_HET_DEPTH = 10  # ...with this many reads
CHI2_95 = 3.841458820694124  # 1 degree of freedom


@dataclass
class ContaminationEstimate:
    """What estimate_contamination found: the fraction, its 95% interval, and what it rests
    on (sites used, their reads, the error rate, the sites by the sample's likeliest
    genotype)."""

    fraction: float
    low: float
    high: float
    sites: int
    reads: int
    error_rate: float
    hom_ref: int = 0
    het: int = 0
    hom_alt: int = 0
    het_fraction: float = 0.5  # a heterozygote's alternate share of the reads

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def line(self) -> str:
        return (f"contamination {100 * self.fraction:.2f}% (95% interval "
                f"{100 * self.low:.2f}-{100 * self.high:.2f}%) from {self.sites:,} sites "
                f"({self.hom_ref:,} homozygous reference, {self.het:,} heterozygous, "
                f"{self.hom_alt:,} homozygous alternate; {self.reads:,} reads; error rate "
                f"{self.error_rate:.2g}; heterozygotes' alternate share "
                f"{self.het_fraction:.3f})")


def _genotype_priors(p: np.ndarray) -> np.ndarray:
    """sites x 3: Hardy-Weinberg chances of 0, 1 and 2 alternate copies."""
    q = 1 - p
    return np.stack([q * q, 2 * p * q, p * p], axis=1)


def _seen(frac: np.ndarray, error: float) -> np.ndarray:
    """The chance that a read showing either allele shows the alternate one, where frac of the
    molecules carry it: a base is read as each wrong base with probability error, and reads of
    the two bases that are neither allele are not counted."""
    return (frac * (1 - 3 * error) + (1 - frac) * error) / (1 - 2 * error)


def _log_prior_pairs(p: np.ndarray) -> np.ndarray:
    """sites x 3 x 3: log P(sample's genotype) + log P(contaminant's genotype)."""
    log_prior = np.log(_genotype_priors(p))
    return log_prior[:, :, None] + log_prior[:, None, :]


def _logsumexp(terms: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    top = terms.max(axis=axes, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)  # (a row of -inf stays -inf)
    return np.log(np.exp(terms - top).sum(axis=axes)) + np.squeeze(top, axis=axes)


def _pair_terms(c: float, log_pairs: np.ndarray, ref: np.ndarray, alt: np.ndarray,
                error: float, het: float) -> np.ndarray:
    """sites x 3 x 3: log P(counts | g, h) + log_pairs, for each pair of the sample's genotype
    g and the other person's h (0, 1 or 2 alternate copies), at contamination c."""
    error = min(max(float(error), 1e-6), 0.2)
    g = np.array([0.0, het, 1.0])
    # alternate fraction for each (sample genotype, contaminant genotype) pair
    seen = _seen((1 - c) * g[:, None] + c * g[None, :], error)  # (3, 3)
    return (alt[:, None, None] * np.log(seen)[None] + ref[:, None, None] * np.log1p(-seen)[None]
            + log_pairs)


def _log_likelihood(c: float, log_pairs: np.ndarray, ref: np.ndarray, alt: np.ndarray,
                    error: float, het: float) -> float:
    """log_likelihood with the genotype pairs' log weights taken once by the caller (the
    priors, _log_prior_pairs; or a read group's posteriors from the other groups' reads): a
    fit evaluates it a few hundred times over the same sites."""
    return float(_logsumexp(_pair_terms(c, log_pairs, ref, alt, error, het), (1, 2)).sum())


def log_likelihood(c: float, p: np.ndarray, ref: np.ndarray, alt: np.ndarray,
                   error: float, het: float = 0.5) -> float:
    """Natural log-likelihood of contamination fraction c over the sites (the binomial
    coefficients, the same for every c, left out); error is the rate of each wrong base, het
    the alternate allele's share of a heterozygote's molecules as the reads see them (below 1/2
    where alignment favours the reference)."""
    return _log_likelihood(c, _log_prior_pairs(p), ref, alt, error, het)


def golden_section(f: Callable[[float], float], a: float, b: float,
                   tol: float) -> tuple[float, float]:
    """The bracket [a, b] narrowed to tol around a maximum of f, which is unimodal there."""
    ratio = (math.sqrt(5) - 1) / 2
    x1, x2 = b - ratio * (b - a), a + ratio * (b - a)
    f1, f2 = f(x1), f(x2)
    while b - a > tol:
        if f1 < f2:
            a, x1, f1 = x1, x2, f2
            x2 = a + ratio * (b - a)
            f2 = f(x2)
        else:
            b, x2, f2 = x2, x1, f1
            x1 = b - ratio * (b - a)
            f1 = f(x1)
    return a, b


def _maximise(f: Callable[[float], float], lo: float, hi: float, tol: float = 1e-6,
              grid: int = 51) -> float:
    """The maximum of f on [lo, hi]: the best of a grid, refined by golden-section search
    between its neighbours (few sites can give a likelihood of more than one peak)."""
    xs = np.linspace(lo, hi, grid)
    i = int(np.argmax([f(float(x)) for x in xs]))
    lo, hi = float(xs[max(i - 1, 0)]), float(xs[min(i + 1, grid - 1)])
    a, b = golden_section(f, lo, hi, tol)
    best = (a + b) / 2
    # the bounds themselves (no contamination at all is the commonest answer), and the grid's
    # best (a peak narrower than the bracket can escape the search)
    return max((float(xs[i]), lo, best, hi), key=f)


def _bound(f: Callable[[float], float], target: float, inside: float, outside: float) -> float:
    """Where f crosses target between inside (f above it) and outside; outside if it never
    does."""
    if f(outside) >= target:
        return outside
    while abs(outside - inside) > 1e-7:  # (a fraction's seventh decimal: beyond any reading)
        mid = (inside + outside) / 2
        if f(mid) >= target:
            inside = mid
        else:
            outside = mid
    return (inside + outside) / 2


def het_fraction(ref: np.ndarray, alt: np.ndarray, p: np.ndarray | None = None,
                 c: float = 0.0) -> float:
    """The alternate allele's share of a heterozygote's reads: pooled over the sites whose share
    is within HET_BAND (with MIN_HET_DEPTH reads), less what a contamination c adds there (the
    other person's reads show the allele at their own dosage, from the frequencies p); 1/2
    where there are too few such sites. Alignment favours the reference a little (0.47-0.49 is
    common), and a model held at 1/2 would charge that to contamination."""
    n = ref + alt
    share = np.divide(alt, n, out=np.zeros_like(n, dtype=np.float64), where=n > 0)
    het = (n >= MIN_HET_DEPTH) & (share >= HET_BAND[0]) & (share <= HET_BAND[1])
    if het.sum() < 10:
        return 0.5
    raw = float(alt[het].sum() / n[het].sum())
    if c > 0 and p is not None:
        # the other person's expected share at those sites (Hardy-Weinberg, their own
        # heterozygotes at the share being measured)
        q = p[het]
        other = float(np.average(2 * q * (1 - q) * raw + q * q, weights=n[het]))
        raw = (raw - c * other) / (1 - c)
    return float(np.clip(raw, 0.3, 0.7))


def estimate(p: np.ndarray, ref: np.ndarray, alt: np.ndarray, error: float,
             het: float | None = None) -> ContaminationEstimate:
    """The maximum-likelihood contamination fraction of sites with population frequencies p
    and these read counts, and its 95% interval; het: a heterozygote's alternate share of the
    reads (None: measured from the sites, het_fraction)."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    ref = np.asarray(ref, dtype=np.float64)
    alt = np.asarray(alt, dtype=np.float64)
    error = min(max(float(error), 1e-5), 0.1)
    if not len(p):
        raise ValueError("no sites to estimate contamination from")
    measured = het is None
    het = het_fraction(ref, alt) if measured else float(het)

    log_pairs = _log_prior_pairs(p)

    def ll(c: float) -> float:
        return _log_likelihood(c, log_pairs, ref, alt, error, het)

    best = _maximise(ll, 0.0, MAX_FRACTION)
    if measured and best > 0:  # the share measured less what the contamination adds, again
        het = het_fraction(ref, alt, p, best)
        best = _maximise(ll, 0.0, MAX_FRACTION)
    target = ll(best) - CHI2_95 / 2
    low = 0.0 if best == 0 else _bound(ll, target, best, 0.0)
    high = _bound(ll, target, best, MAX_FRACTION)
    # each site's likeliest genotype of the sample, at the estimate
    frac = np.array([0.0, het, 1.0]) * (1 - best) + best * p[:, None]
    seen = _seen(frac, error)
    post = (alt[:, None] * np.log(seen) + ref[:, None] * np.log1p(-seen)
            + np.log(_genotype_priors(p)))
    calls = np.bincount(post.argmax(axis=1), minlength=3)
    return ContaminationEstimate(best, low, high, len(p), int(ref.sum() + alt.sum()), error,
                                 int(calls[0]), int(calls[1]), int(calls[2]), het)


@dataclass
class SiteCounts:
    """Read counts at a resource's SNVs: population frequency, reference and alternate reads,
    and reads of the other two bases (sequencing errors); groups: the same counts of each read
    group asked for (sites x groups x [ref, alt, other]), else None."""

    p: np.ndarray
    ref: np.ndarray
    alt: np.ndarray
    other: np.ndarray
    groups: np.ndarray | None = None

    @classmethod
    def concat(cls, parts: Sequence[SiteCounts], n_groups: int = 0) -> SiteCounts:
        columns = [np.concatenate([getattr(x, f) for x in parts]) if parts else np.zeros(0)
                   for f in ("p", "ref", "alt", "other")]
        groups = None
        if n_groups:
            groups = np.concatenate([x.groups for x in parts]) if parts else \
                np.zeros((0, n_groups, 3))
        return cls(*columns, groups)


def _spread(n: int) -> list[int]:
    """0..n-1 in an order that covers the range evenly from its first items on (golden-ratio
    steps), so that any prefix of it samples the whole genome."""
    step = (math.sqrt(5) - 1) / 2
    return sorted(range(n), key=lambda i: (i * step) % 1.0)


def site_counts(caller: object, bam: str, resource: str, min_af: float = MIN_AF,
                max_af: float = MAX_AF, threads: int = 1,
                max_sites: int | None = MAX_SITES,
                read_groups: Sequence[str] = ()) -> SiteCounts:
    """The reads at the resource's SNVs of frequency in [min_af, max_af], shard by shard (the
    Caller's regions and filters; its reference's base codes). Shards are taken in an order
    spread over the genome until they hold max_sites sites (None: all): a genome's common
    SNVs are millions, and a few hundred thousand pin the fraction down, so only their shards'
    reads are read. read_groups: also each one's counts at the same sites (groups)."""
    from gmsaccel.call import resolve_regions, shards

    work = shards(resolve_regions(None, caller.contigs))  # type: ignore[attr-defined]
    caller.check_inputs([bam])  # type: ignore[attr-defined]  # (once, not per shard)
    Sites = dict[int, tuple[float, int, int]]  # position -> (frequency, ref code, alt code)

    def sites_of(shard: object) -> Sites:
        codes = caller.ref_codes(shard.contig)  # type: ignore[attr-defined]
        alleles = _core.read_germline_resource(resource, shard.contig, shard.start, shard.end,
                                               codes)
        # Sites of one allele: a position where the resource has another allele of frequency
        # MIN_OTHER_AF or more (rarer ones are let be) is left out, as its reads would be
        # counted as errors.
        crowded: dict[int, int] = {}
        for pos, *_, af in alleles:
            if af >= MIN_OTHER_AF:
                crowded[pos] = crowded.get(pos, 0) + 1
        return {pos: (af, "ACGT".index(r), "ACGT".index(a)) for pos, r, a, af in alleles
                if len(r) == 1 and len(a) == 1 and r in "ACGT" and a in "ACGT"
                and min_af <= af <= max_af and crowded.get(pos, 0) <= 1}

    def count(shard: object, sites: Sites) -> SiteCounts:
        # (sites_of's positions lie in the shard: the engine keeps the groups' counts there)
        region = (shard.contig, shard.start, shard.end)  # type: ignore[attr-defined]
        pile = caller.pileup(bam, region, check=False,  # type: ignore[attr-defined]
                             read_groups=read_groups, group_at=list(sites))
        idx = np.array(list(sites)) - int(pile["start"])
        p, r_i, a_i = (np.array(col) for col in zip(*sites.values(), strict=True))
        at = np.arange(len(idx))

        def split(rows: np.ndarray) -> np.ndarray:
            """(..., sites, 4) base counts -> (..., sites, 3): ref, alt and other reads"""
            ref, alt = rows[..., at, r_i], rows[..., at, a_i]
            return np.stack([ref, alt, rows.sum(axis=-1) - ref - alt], axis=-1)

        rows = pile["base_counts"][idx, :4].astype(np.float64)
        ref, alt, other = split(rows).T
        # a third base in more reads than errors make: an allele the resource lacks (a
        # private variant) or a misplaced paralog; left out too
        third = rows.copy()
        third[at, r_i] = 0
        third[at, a_i] = 0
        clean = ~((third.max(axis=1) >= 2) & (third.max(axis=1) >= THIRD_BASE_SHARE
                                              * rows.sum(axis=1)))
        groups = None
        if read_groups:  # (each group's counts, from the same pass, at the same sites)
            per = split(pile["group_base_counts"][:, :, :4].astype(np.float64))
            groups = per.transpose(1, 0, 2)[clean]
        return SiteCounts(p[clean], ref[clean], alt[clean], other[clean], groups)

    order = [work[i] for i in _spread(len(work))]
    chosen: list[tuple[object, Sites]] = []
    total = 0
    batch = max(1, threads) * 4
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for at in range(0, len(order), batch):
            if max_sites is not None and total >= max_sites:
                break
            part = order[at : at + batch]
            for shard, sites in zip(part, pool.map(sites_of, part), strict=True):
                if sites:
                    chosen.append((shard, sites))
                    total += len(sites)
        return SiteCounts.concat(list(pool.map(lambda item: count(*item), chosen)),
                                 len(read_groups))


def _sample_sites(reference: str | os.PathLike, bam: str | os.PathLike,
                  resource: str | os.PathLike, threads: int, min_af: float, max_af: float,
                  min_quality: int, max_sites: int | None, min_groups: int,
                  ) -> tuple[SiteCounts, np.ndarray, float, list[str]]:
    """The sites' counts (each read group's too where the BAM has min_groups or more; 0: not
    asked), which of them are used (depth within bounds) and the error rate: what
    estimate_contamination and its read groups' estimates rest on."""
    from gmsaccel.call import Caller

    if not 0 < min_af <= max_af < 1:
        raise ValueError(f"allele frequencies: need 0 < min_af <= max_af < 1, got {min_af:g}, "
                         f"{max_af:g}")
    resource = sites_file(resource)
    caller = Caller(reference, min_mapq=min_quality, min_baseq=min_quality, threads=threads)
    _core.check_germline_resource(resource, [c for c, _ in caller.contigs])
    if max_sites is not None and max_sites < 1:
        raise ValueError(f"max_sites must be at least 1, not {max_sites}")
    groups: list[str] = []
    if min_groups:
        caller.check_inputs([bam])  # (a file that is no BAM fails as estimate's do)
        groups = read_groups_of(bam, caller.fasta)
        if not groups:
            raise _core.InputError(f"{bam}: no @RG lines in its header: no read groups to "
                                   "estimate apart")
        if len(groups) < min_groups:
            groups = []
    counts = site_counts(caller, os.fspath(bam), resource, min_af, max_af, threads, max_sites,
                         groups)
    depth = counts.ref + counts.alt
    if not len(depth):
        raise _core.InputError(f"{resource}: no SNVs of frequency {min_af:g}-{max_af:g} (with "
                               "one allele) on the reference's contigs: nothing to estimate "
                               "from")
    if not depth.any():
        raise _core.InputError(f"{bam}: no reads at the common SNVs of {resource} "
                               f"(frequency {min_af:g}-{max_af:g}): nothing to estimate from")
    median = float(np.median(depth[depth > 0]))
    keep = (depth >= MIN_DEPTH) & (depth <= MAX_DEPTH_RATIO * median)
    if not keep.any():
        raise _core.InputError(f"{bam}: no common SNV of {resource} has {MIN_DEPTH} reads or "
                               "more: nothing to estimate from")
    # an error is one of three wrong bases: the rate of one of them, from the two that are
    # neither allele
    error = float(counts.other[keep].sum()) / (2 * float((depth + counts.other)[keep].sum()))
    return counts, keep, error, groups


def estimate_contamination(reference: str | os.PathLike, bam: str | os.PathLike,
                           resource: str | os.PathLike, threads: int = 1,
                           min_af: float = MIN_AF, max_af: float = MAX_AF,
                           min_quality: int = MIN_QUALITY,
                           max_sites: int | None = MAX_SITES) -> ContaminationEstimate:
    """The fraction of bam's reads from another person, from the germline resource's common
    SNVs (a bgzipped, indexed VCF/BCF with INFO/AF, as for call --germline-resource): those of
    shards spread over the genome until they hold max_sites (None: every shard)."""
    counts, keep, error, _ = _sample_sites(reference, bam, resource, threads, min_af, max_af,
                                           min_quality, max_sites, 0)
    return estimate(counts.p[keep], counts.ref[keep], counts.alt[keep], error)


@dataclass
class ReadGroupEstimate:
    """One read group's (a lane's, a library's) contamination: the fraction of its reads from
    another person, its 95% interval, the sites with its reads, and those reads."""

    read_group: str
    fraction: float
    low: float
    high: float
    sites: int
    reads: int
    error_rate: float

    def line(self) -> str:
        if not self.sites:
            return f"read group {self.read_group}: no reads at the sites"
        return (f"read group {self.read_group}: contamination {100 * self.fraction:.2f}% (95% "
                f"interval {100 * self.low:.2f}-{100 * self.high:.2f}%) from {self.sites:,} "
                f"sites, {self.reads:,} reads; error rate {self.error_rate:.2g}")

    def as_dict(self) -> dict[str, float | int | str | None]:
        """(None for the figures of a read group without reads at the sites: JSON has no
        NaN)"""
        return {k: None if isinstance(v, float) and math.isnan(v) else v
                for k, v in asdict(self).items()}


UNGROUPED = "*"  # read_group of the reads in no listed read group (untagged, unknown RG)
MIN_UNGROUPED_SHARE = 0.01  # ...estimated apart where they hold this share of the reads


def read_groups_of(bam: str | os.PathLike, reference: str = "") -> list[str]:
    """The @RG IDs of a BAM/CRAM's header, in order (each once)."""
    import pysam

    with pysam.AlignmentFile(os.fspath(bam), reference_filename=reference or None) as f:
        ids = [str(rg["ID"]) for rg in f.header.to_dict().get("RG", []) if "ID" in rg]
    return list(dict.fromkeys(ids))


def genotype_log_posteriors(p: np.ndarray, ref: np.ndarray, alt: np.ndarray, c: float,
                            error: float, het: float = 0.5) -> np.ndarray:
    """sites x 3 x 3: log P(the sample's genotype g, the other person's h (0, 1 or 2 alternate
    copies each) | these reads) at contamination c, from Hardy-Weinberg priors (p)."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    error = min(max(float(error), 1e-5), 0.1)
    post = _pair_terms(c, _log_prior_pairs(p), ref, alt, error, het)
    return post - _logsumexp(post, (1, 2))[:, None, None]


def estimate_given_genotypes(p: np.ndarray, log_post: np.ndarray, ref: np.ndarray,
                             alt: np.ndarray, error: float, het: float = 0.5
                             ) -> tuple[float, float, float]:
    """The maximum-likelihood contamination of reads at sites where the genotypes of the
    sample and the other person are known as far as log_post (sites x 3 x 3, log P(g, h);
    -inf rules a pair out) says, and its 95% interval: a lane's few reads a site cannot tell
    the genotypes themselves, and need not."""
    return _fit_group(log_post, ref, alt, error, het)[:3]


def _fit_group(log_post: np.ndarray, ref: np.ndarray, alt: np.ndarray, error: float,
               het: float) -> tuple[float, float, float, float]:
    """estimate_given_genotypes' fit, and its log-likelihood at the maximum."""
    error = min(max(float(error), 1e-5), 0.1)

    def ll(c: float) -> float:
        return _log_likelihood(c, log_post, ref, alt, error, het)

    best = _maximise(ll, 0.0, MAX_FRACTION)
    top = ll(best)
    target = top - CHI2_95 / 2
    low = 0.0 if best == 0 else _bound(ll, target, best, 0.0)
    return best, low, _bound(ll, target, best, MAX_FRACTION), top


def estimate_contamination_by_read_group(
        reference: str | os.PathLike, bam: str | os.PathLike, resource: str | os.PathLike,
        threads: int = 1, min_af: float = MIN_AF, max_af: float = MAX_AF,
        min_quality: int = MIN_QUALITY, max_sites: int | None = MAX_SITES,
        min_groups: int = 1,
) -> tuple[ContaminationEstimate, list[ReadGroupEstimate]]:
    """The sample's estimate (estimate_contamination's) and each read group's: a lane or library
    mixed with another person's reads (a swapped or contaminated one among many) shows in its
    own reads. A read group's few reads a site cannot call the sample's genotype: the genotypes
    of the sample and of the other person at each site are weighed by their posterior from the
    sample's other reads (the other read groups', at their own estimate; leaving the group's own
    out, whose foreign reads would otherwise make the very sites that show them look uncertain),
    and the group's reads with its own error rate. The other person in this group may be the
    others' (a contaminated library's lanes: both genotypes weighed) or someone else (only the
    sample's): the likelier fit is taken. Reads of no listed read group (untagged, or an ID the
    header lacks) are estimated apart as UNGROUPED where they hold MIN_UNGROUPED_SHARE of the
    reads. A BAM of fewer than min_groups read groups gets the sample's estimate alone."""
    counts, keep, error, groups = _sample_sites(reference, bam, resource, threads, min_af,
                                                max_af, min_quality, max_sites,
                                                max(1, min_groups))
    p, ref, alt, other = counts.p[keep], counts.ref[keep], counts.alt[keep], counts.other[keep]
    if not groups:
        return estimate(p, ref, alt, error), []
    return estimate_groups(p, ref, alt, other, counts.groups[keep],  # type: ignore[index]
                           groups, error, threads)


def estimate_groups(p: np.ndarray, ref: np.ndarray, alt: np.ndarray, other: np.ndarray,
                    per_group: np.ndarray, groups: Sequence[str], error: float,
                    threads: int = 1) -> tuple[ContaminationEstimate, list[ReadGroupEstimate]]:
    """estimate_contamination_by_read_group's estimates from the sites' counts: the sample's
    (p, ref, alt; other: reads of neither allele) and each group's (per_group: sites x groups x
    [ref, alt, other], each within the sample's); error: the sample's error rate. Groups are
    fitted on `threads` threads."""
    rest = np.stack([ref, alt, other], axis=1) - per_group.sum(axis=1)
    if (rest < 0).any():
        raise ValueError("the read groups' counts exceed the sample's")
    whole = estimate(p, ref, alt, error)
    names = list(groups)
    if rest[:, :2].sum() >= MIN_UNGROUPED_SHARE * (ref + alt).sum():
        per_group = np.concatenate([per_group, rest[:, None, :]], axis=1)
        names.append(UNGROUPED)

    def fit(k: int) -> ReadGroupEstimate:
        rg = names[k]
        r, a, o = per_group[:, k, 0], per_group[:, k, 1], per_group[:, k, 2]
        use = r + a > 0
        if not use.any():
            return ReadGroupEstimate(rg, float("nan"), float("nan"), float("nan"), 0, 0,
                                     float("nan"))
        # The sample's and the other person's genotypes from the other groups' reads, at their
        # own contamination. Where one person contaminates every lane (the DNA's
        # contamination) it is the same person in this one: the genotypes weighed jointly;
        # where this lane's is someone else (a lane of its own mishap), only the sample's
        # carries over. Each is fitted and the likelier taken (a clean rest: the two agree).
        others = (ref - r, alt - a)
        rest_c = estimate(p, *others, error, whole.het_fraction).fraction \
            if (others[0] + others[1]).any() else 0.0
        joint = genotype_log_posteriors(p[use], others[0][use], others[1][use], rest_c,
                                        error, whole.het_fraction)
        prior_h = np.log(_genotype_priors(np.clip(p[use], 1e-6, 1 - 1e-6)))
        apart = _logsumexp(joint, (2,))[:, :, None] + prior_h[:, None, :]
        rg_error = float(o[use].sum()) / (2 * float((r + a + o)[use].sum()))
        fits = [_fit_group(log_post, r[use], a[use], rg_error, whole.het_fraction)
                for log_post in (joint, apart)]
        best, low, high, _ = max(fits, key=lambda f: f[3])
        return ReadGroupEstimate(rg, best, low, high, int(use.sum()), int((r + a)[use].sum()),
                                 rg_error)

    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(names)))) as pool:
        return whole, list(pool.map(fit, range(len(names))))
