"""Level and power of the per-feature tests with missing values (the numbers in
docs/shift-detection.md, "What it guarantees").

Run (about 10 s; with ``--c2st`` also the classifier test's level and power, about 3 min):
    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/stat_missing_rates.py [--seed 123] [--c2st]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd

from nndoctor.shift import classifier_test, feature_test, ks_test
from nndoctor.shift._univariate import missing_rate_pvalues


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--c2st", action="store_true", help="also the classifier test")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    warnings.simplefilter("ignore")

    def rate_test(n: int, r0: float, r1: float, reps: int) -> tuple[float, float]:
        a, c = rng.binomial(n, r0, reps), rng.binomial(n, r1, reps)
        _, p, fisher = missing_rate_pvalues(a, n, c, n)
        return float((p <= 0.05).mean()), float(fisher.mean())

    for n, rate in ((200, 0.10), (1000, 0.05), (150, 0.01), (100, 0.02)):
        level, fisher = rate_test(n, rate, rate, 20_000)
        print(f"missing-rate test, level: n={n}, {rate:.0%} missing in both, 20,000 runs: "
              f"{level:.2%} (Fisher's test in {fisher:.0%} of them)")  # fmt: skip
    for r1 in (0.15, 0.10, 0.07):
        power, _ = rate_test(1000, 0.05, r1, 2000)
        print(f"missing-rate test, power: n=1000, 5% -> {r1:.0%}, 2,000 runs: {power:.1%}")
    rejections = 0
    for s in range(2000):
        x, y = rng.normal(size=80), rng.normal(size=80)
        x[rng.random(80) < 0.10] = np.nan
        y[rng.random(80) < 0.40] = np.nan
        res = ks_test(x[:, None], y[:, None], missing="drop", n_bootstrap=0, random_state=s)
        rejections += res.features[0].pvalue <= 0.05
    print(f"KS on the observed values, MCAR 10% vs 40%, n=80, 2,000 runs: {rejections / 2000:.2%}")
    rejections = 0
    for s in range(2000):
        X, Y = rng.normal(size=(60, 2)), rng.normal(size=(60, 2))
        X[rng.random((60, 2)) < 0.15] = np.nan
        Y[rng.random((60, 2)) < 0.15] = np.nan
        res = feature_test(pd.DataFrame(X), pd.DataFrame(Y), n_bootstrap=0, random_state=s)
        rejections += res.drift_detected
    print(f"whole family (missing='test'), 2 columns, 15% MCAR, n=60, 2,000 runs: "
          f"{rejections / 2000:.2%}")  # fmt: skip
    if args.c2st:
        c2st(rng)


def c2st(rng: np.random.Generator) -> None:
    """The classifier test with 2 of 3 columns missing at random in both samples."""

    def sample(n: int, rate: float) -> np.ndarray:
        x = rng.normal(size=(n, 3))
        x[:, :2][rng.random((n, 2)) < rate] = np.nan
        return x

    rejections = 0
    for s in range(1000):
        res = classifier_test(sample(60, 0.25), sample(60, 0.25), n_splits=2,
                              importance="none", random_state=s)  # fmt: skip
        rejections += res.drift_detected
    print(f"classifier test, level: 25% MCAR, n=60, 2 folds, 1,000 runs: {rejections / 1000:.1%}")
    for r1 in (0.15, 0.10):
        rejections = 0
        for s in range(200):
            res = classifier_test(sample(200, 0.05), sample(200, r1), importance="none",
                                  random_state=s)  # fmt: skip
            rejections += res.drift_detected
        print(f"classifier test, power: missing rate 5% -> {r1:.0%} in 2 columns, n=200, "
              f"5 folds, 200 runs: {rejections / 200:.1%}")  # fmt: skip


if __name__ == "__main__":
    main()
