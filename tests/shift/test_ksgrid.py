"""The KS grid's pieces: the hash sample, exact counts, and bounds that hold the exact D."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from nndoctor.shift._ksgrid import grid_counts, grid_ks, hash_sample, merge_samples


@pytest.mark.parametrize("seed", range(40))
def test_bounds_hold_the_exact_distance_and_meet_when_the_grid_has_every_value(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m, n = (int(v) for v in rng.integers(1, 3000, 2))
    decimals = int(rng.integers(0, 4))  # 0: a handful of distinct values, many ties
    x = np.round(rng.normal(size=m), decimals)
    y = np.round(rng.normal(0.3 * rng.normal(), 1, size=n), decimals)
    k = int(rng.choice([1, 4, 16, 64, 5000]))
    sx = merge_samples([hash_sample(p, k) for p in np.array_split(x, 5) if p.size], k)
    np.testing.assert_array_equal(sx[1], hash_sample(x, k)[1])  # partitioning does not matter
    np.testing.assert_array_equal(sx[1], hash_sample(rng.permutation(x), k)[1])  # nor order
    assert sx[1].size == min(k, np.unique(x).size)
    grid = np.union1d(sx[1], hash_sample(y, k)[1])
    le, lt = grid_counts(x, grid)
    np.testing.assert_array_equal(le, [(x <= g).sum() for g in grid])
    np.testing.assert_array_equal(lt, [(x < g).sum() for g in grid])
    low, high = grid_ks(grid, le, lt, m, *grid_counts(y, grid), n)
    d = stats.ks_2samp(x, y).statistic
    assert low <= d + 1e-12
    assert d <= high + 1e-12
    if k == 5000:  # every distinct value on the grid
        assert low == pytest.approx(d, abs=1e-12)
        assert high == pytest.approx(d, abs=1e-12)


def test_negative_zero_is_zero() -> None:
    a = hash_sample(np.array([0.0, 1.0, 2.0]), 8)
    b = hash_sample(np.array([-0.0, 1.0, 2.0]), 8)
    np.testing.assert_array_equal(a[0], b[0])
