"""The Kolmogorov tail used by every KS p-value: scipy's law, summed faster where scipy is slow."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from nndoctor.shift import ks_test
from nndoctor.shift._kll import ks_pvalue
from nndoctor.shift._univariate import kolmogorov_sf


def _d_for(p: float, n: int) -> float:
    """The distance at which the asymptotic law gives about ``p`` at size ``n``."""
    if p > 1e-200:
        return float(stats.kstwobign.isf(p)) / math.sqrt(n)
    return math.sqrt(-math.log(p / 2) / (2 * n))


@pytest.mark.parametrize("n", [141, 1_000, 10_001, 50_000])
@pytest.mark.parametrize("p", [0.5, 0.03, 1e-3, 1e-8, 1e-30, 1e-100])
def test_equals_scipy_in_every_branch(n: int, p: float) -> None:
    d = _d_for(p, n)
    ref = float(stats.kstwo.sf(d, n))
    assert kolmogorov_sf(d, n) == pytest.approx(ref, rel=1e-8, abs=1e-300)


@pytest.mark.parametrize(
    ("d", "n"),
    [
        (0.6, 2_000),  # d >= 1/2: scipy's 2 x Smirnov branch
        (0.7, 50),  # n <= 140: scipy's own algorithms
        (0.5 / 3_000, 3_000),  # n d <= 1/2: P = 1
        (0.8 / 3_000, 3_000),  # n d <= 1: Ruben-Gambino
        (1 - 0.5 / 3_000, 3_000),  # n d >= n - 1: Ruben-Gambino
        (0.5, 2_000),  # n d^2 >= 370: 0 in scipy's sf branch, but d >= 1/2 comes first
        (0.3, 5_000),  # n d^2 >= 370: 0
        (0.002, 2_000_000),  # n > 10^6: scipy's asymptotic series, returned as is
        (0.0, 5_000),
        (1.0, 5_000),
    ],
)
def test_edges_equal_scipy(d: float, n: int) -> None:
    ref = float(stats.kstwo.sf(d, n))
    assert kolmogorov_sf(d, n) == pytest.approx(ref, rel=1e-8, abs=1e-300)


def test_rounding_at_the_last_term_gives_no_nan() -> None:
    # d = 132/178000: n (1 - d) is an integer, and 1 - d - j/n rounds to just below 0 there
    n, d = 178_000, 132 / 178_000
    assert 1.0 - d - math.floor(n * (1 - d)) / n < 0  # the case this test is about
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = kolmogorov_sf(d, n)
    assert p == pytest.approx(float(stats.kstwo.sf(d, n)), rel=1e-8)


def test_ks_test_and_sketch_pvalue_use_it() -> None:
    # sizes above the exact two-sample recursion, a drift in the series' tail
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(30_000, 1)), rng.normal(0.05, 1, size=(25_000, 1))
    res = ks_test(x, y, n_bootstrap=0, random_state=0)
    ref = stats.ks_2samp(x[:, 0], y[:, 0], method="asymp")
    feature = res.features[0]
    assert feature.pvalue < 1e-3  # in the branch that is summed here
    assert feature.pvalue == pytest.approx(ref.pvalue, rel=1e-8)
    assert ks_pvalue(feature.statistic, 30_000, 25_000) == pytest.approx(ref.pvalue, rel=1e-8)
