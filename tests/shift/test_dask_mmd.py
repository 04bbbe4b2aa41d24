"""The random-feature MMD (method "rff"): on Dask it equals the in-memory test; level and power."""

from __future__ import annotations

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nndoctor.exceptions import InvalidParameterError
from nndoctor.shift import mmd_test


@pytest.fixture(autouse=True)
def _synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


def _pair(seed: int, shift: float = 0.0, m: int = 2000, n: int = 1500):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, 3)), rng.normal(size=(n, 3)) + np.array([shift, 0.0, 0.0])


@pytest.mark.parametrize("kernel", ["rbf", "laplacian"])
def test_dask_equals_in_memory_on_the_same_rows(kernel):
    X, Y = _pair(0, shift=0.1)
    got = mmd_test(
        da.from_array(X, chunks=(600, -1)),
        dd.from_pandas(pd.DataFrame(Y, columns=["x0", "x1", "x2"]), npartitions=3),
        kernel=kernel,
        bandwidth=1.5,
        random_state=0,
    )
    want = mmd_test(X, Y, kernel=kernel, bandwidth=1.5, method="rff", random_state=0)
    assert got.method == want.method == "mmd-rff"
    assert (got.n_source, got.n_target) == (2000, 1500)
    assert got.details["engine"] == "dask"
    assert got.details["n_features"] == 100
    assert got.statistic == pytest.approx(want.statistic, rel=1e-9, abs=1e-12)
    # the features are centred differently (any centre gives the same test: a rotation of each
    # cosine-sine pair), so the two agree up to rounding, not bit for bit
    assert got.pvalue == pytest.approx(want.pvalue, rel=1e-6)
    assert got.details["hotelling_t2"] == pytest.approx(want.details["hotelling_t2"], rel=1e-6)


def test_median_bandwidth_from_a_bounded_sample_is_stated_and_reproducible():
    X, Y = _pair(1, m=4000, n=4000)
    dx, dy = da.from_array(X, chunks=(1000, -1)), da.from_array(Y, chunks=(1000, -1))
    a = mmd_test(dx, dy, random_state=3)
    b = mmd_test(dx, dy, random_state=3)
    assert a.to_dict() == b.to_dict()
    assert a.details["bandwidth_rule"] == "median"
    assert 0 < a.details["bandwidth_sample"] <= 2 * 1000 + 8
    # theory: X - X' ~ N(0, 2 I_3), so the median distance of two 3-D standard normal points
    # is sqrt(2 * median of chi2(3)) = 2.175; the sample's median lands within 5 % of it
    theory = float(np.sqrt(2 * stats.chi2.ppf(0.5, 3)))
    assert a.details["bandwidth"] == pytest.approx(theory, rel=0.05)


def test_rff_statistic_approximates_the_exact_mmd():
    X, Y = _pair(2, shift=0.8, m=400, n=400)
    exact = mmd_test(X, Y, bandwidth=2.0, n_permutations=20, method="permutation", random_state=0)
    rff = mmd_test(X, Y, bandwidth=2.0, method="rff", n_features=800, random_state=0)
    assert rff.statistic == pytest.approx(exact.statistic, rel=0.15)


def test_false_positive_rate_at_most_alpha():
    # 150 seeds under H0 (the test's seed apart from the data's): the rejection rate at 0.05
    # stays within 3 Monte Carlo sd (0.018) of alpha; a test that ignored the covariance, or
    # used the chi-squared law with the wrong degrees of freedom, rejects far more often
    rejected = [
        mmd_test(*_pair(seed, m=300, n=250), method="rff", random_state=seed + 10_000).pvalue
        <= 0.05
        for seed in range(150)
    ]
    assert np.mean(rejected) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 150)


def test_power_under_a_mean_shift():
    # a shift of 0.5 sd in one of three columns, 500 vs 400 rows: detected nearly always
    # (0.97 over 30 seeds when this was written)
    rejected = [
        mmd_test(*_pair(seed, 0.5, 500, 400), method="rff", random_state=seed + 10_000).pvalue
        <= 0.05
        for seed in range(20)
    ]
    assert np.mean(rejected) >= 0.8


def test_dask_detects_a_shift_and_refuses_the_quadratic_tests():
    X, Y = _pair(4, shift=0.3)
    dx, dy = da.from_array(X, chunks=(500, -1)), da.from_array(Y, chunks=(500, -1))
    res = mmd_test(dx, dy, standardize=True, random_state=0)
    assert res.drift_detected
    assert res.pvalue < 1e-4
    with pytest.raises(InvalidParameterError, match="does not run on Dask"):
        mmd_test(dx, dy, method="permutation")
    with pytest.raises(InvalidParameterError, match="even"):
        mmd_test(X, Y, method="rff", n_features=7)
