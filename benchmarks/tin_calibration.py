#!/usr/bin/env python3
"""How often the tumour-in-normal estimate's 95% interval holds the truth, on candidate
alleles simulated from the estimator's own model (gmsaccel.tumour_in_normal.estimate).

Two kinds of sample, each over many seeds at a few TiN:

- ``genome``: a 30x normal (depth Poisson(30) + 1), somatic alleles at tumour fractions
  0.3 / 0.15 / 0.08 / 0.04 seen in it at TiN f through a read error rate of 0.2%;
  heterozygous germline sites at 1/2, homozygous ones, and odd sites at a uniform fraction
  (``large``: 300 / 1,000 / 200 / 50 sites; ``small``: 60 / 60 / 20 / 0, whose 20
  homozygous sites measure the error rate poorly);
- ``panel``: a tumour read 500 times and a normal 1,000 times, heterozygotes' allele balance
  straying by site (N(1/2, spread), alike in both samples, as a capture bias), 200 somatic,
  2,000 heterozygous and 500 homozygous sites; the estimate is given the tumour's reads.

Prints, per case, the intervals holding the truth, those leaving out 0, their mean width, and
the point estimate's bias and RMSE.

    python3 benchmarks/tin_calibration.py [--seeds 60] [--cases genome,panel]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from gmsaccel.tumour_in_normal import estimate

ERROR = 2e-3
FRACTIONS = (0.3, 0.15, 0.08, 0.04)
SIZES = {"large": (300, 1000, 200, 50), "small": (60, 60, 20, 0)}


def genome(tin: float, seed: int, size: str) -> tuple[np.ndarray, ...]:
    somatic, het, hom, odd = SIZES[size]
    rng = np.random.default_rng(seed)
    f_som = rng.choice(FRACTIONS, somatic)
    f = np.concatenate([f_som, np.clip(rng.normal(0.5, 0.05, het), 0.3, 0.7),
                        rng.uniform(0.9, 1.0, hom), rng.uniform(0.05, 0.95, odd)])
    p = np.concatenate([ERROR + (1 - 2 * ERROR) * tin * f_som, np.full(het, 0.5),
                        np.full(hom, 1 - ERROR), rng.uniform(0, 1, odd)])
    depth = rng.poisson(30, len(f)) + 1
    return f, rng.binomial(depth, p).astype(np.float64), depth.astype(np.float64)


def panel(tin: float, seed: int, spread: float) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    f_som = rng.choice(FRACTIONS[:3], 200)
    balance = np.clip(rng.normal(0.5, spread, 2000), 0.05, 0.95)
    in_tumour = np.concatenate([f_som, balance, np.ones(500)])
    in_normal = np.concatenate([tin * f_som, balance, np.ones(500)])
    t_alt = rng.binomial(500, ERROR + (1 - 2 * ERROR) * in_tumour).astype(np.float64)
    alt = rng.binomial(1000, ERROR + (1 - 2 * ERROR) * in_normal).astype(np.float64)
    n = len(alt)
    return t_alt / 500, alt, np.full(n, 1000.0), t_alt, np.full(n, 500.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=60, help="simulations per case (60)")
    ap.add_argument("--cases", default="genome,panel", help="genome, panel or both")
    args = ap.parse_args()
    cases: list[tuple[str, float, Callable[[float, int], tuple[np.ndarray, ...]]]] = []
    if "genome" in args.cases:
        cases += [(f"genome {size}", tin, lambda t, s, z=size: genome(t, s, z))
                  for size in ("large", "small") for tin in (0.0, 0.05, 0.2)]
    if "panel" in args.cases:
        cases += [(f"panel, spread {spread:g}", tin, lambda t, s, z=spread: panel(t, s, z))
                  for spread in (0.0, 0.03) for tin in (0.0, 0.1)]
    print("| case | TiN | intervals holding it | leaving out 0 | mean width | bias | RMSE | s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, tin, make in cases:
        t0 = time.monotonic()
        results = [estimate(*make(tin, 7000 + seed)) for seed in range(args.seeds)]
        held = sum(r.low <= tin <= r.high for r in results)
        errors = np.array([r.fraction - tin for r in results])
        print(f"| {name} | {tin:g} | {held}/{args.seeds} | "
              f"{sum(r.excludes_zero() for r in results)}/{args.seeds} | "
              f"{np.mean([r.high - r.low for r in results]):.4f} | {errors.mean():+.4f} | "
              f"{np.sqrt(np.mean(errors ** 2)):.4f} | {time.monotonic() - t0:.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
