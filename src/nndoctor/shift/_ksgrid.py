r"""The KS distance of two partitioned samples, exactly bounded and the same on every run.

A KLL sketch's compaction draws random bits that DataSketches' Python binding does not let us
seed, so a KS distance read from two sketches differs from run to run (each time within the
sketch's bound). Here the distance is computed in two passes that involve no randomness:

1. **a grid**: from each table, the ``k`` distinct values with the smallest hash of their bits
   (splitmix64; a "bottom-k" sample of the distinct values, :func:`hash_sample`). Per partition
   the ``k`` smallest are kept, and merging keeps the ``k`` smallest of the union
   (:func:`merge_samples`), so the sample depends on neither the partitioning nor the order of
   the rows. The grid :math:`g_1 < \dots < g_G` is the union of both tables' samples;
2. **exact counts on the grid** (:func:`grid_counts`): per partition, for every grid point, how
   many values are at most :math:`g_i` and how many are below it; counts add across partitions.

With :math:`F_x(g_i)` and :math:`F_x(g_i^-)` exact, the distance on the grid is a lower bound of
the exact one, and between two grid points the CDFs can only climb to their values just below
the next point, which gives an upper bound (:func:`grid_ks`):

.. math:: D_{grid} = \max_i \max\big(|F_x(g_i) - F_y(g_i)|,\ |F_x(g_i^-) - F_y(g_i^-)|\big)
          \le D \le \max\Big(D_{grid},\ \max_{i=0}^{G}
          \max\big(F_x(g_{i+1}^-) - F_y(g_i),\ F_y(g_{i+1}^-) - F_x(g_i)\big)\Big)

(with :math:`g_0 = -\infty`, :math:`g_{G+1} = +\infty`). Both bounds are deterministic, and
equal (the exact :math:`D`) when every distinct value of both tables is on the grid. The KS
p-value taken at :math:`D_{grid} \le D` is never below the exact test's.

References
----------
Cohen, E., Kaplan, H. (2007). Summarizing data using bottom-k sketches. PODC. Steele, G. L.,
Lea, D., Flood, C. H. (2014). Fast splittable pseudorandom number generators (splitmix64).
OOPSLA.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x, y = rng.normal(size=5000), rng.normal(0.1, 1, size=4000)
>>> sx, sy = hash_sample(x, 256), hash_sample(y, 256)
>>> grid = np.union1d(sx[1], sy[1])
>>> lo, hi = grid_ks(grid, *grid_counts(x, grid), x.size, *grid_counts(y, grid), y.size)
>>> from scipy import stats
>>> d = stats.ks_2samp(x, y).statistic
>>> bool(lo <= d <= hi), bool(hi - lo < 0.05)
(True, True)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["grid_counts", "grid_ks", "hash_sample", "merge_samples"]

#: (hashes, values): a bottom-k sample of distinct values, sorted by value
Sample = tuple[npt.NDArray[np.uint64], npt.NDArray[np.float64]]


def _splitmix64(bits: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64's finalizer: a fixed bijection of 64-bit words that mixes every bit."""
    z = bits + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    out: npt.NDArray[np.uint64] = z ^ (z >> np.uint64(31))
    return out


def _bottom(hashes: npt.NDArray[np.uint64], values: npt.NDArray[np.float64], k: int) -> Sample:
    """The ``k`` entries with the smallest hashes (all when fewer), sorted by value."""
    if hashes.size > k:
        keep = np.argpartition(hashes, k - 1)[:k]
        hashes, values = hashes[keep], values[keep]
    order = np.argsort(values, kind="stable")
    return hashes[order], values[order]


def hash_sample(values: npt.NDArray[np.float64], k: int) -> Sample:
    """The ``k`` distinct values of ``values`` (finite floats) with the smallest hashes.

    Equal values hash alike, so the ``m`` smallest hashes (with repeats) hold the ``k`` smallest
    distinct ones as soon as they hold ``k`` distinct values: ``m`` starts at ``2 k`` and
    doubles, so that a column of continuous values costs one hash and one partial sort.
    """
    vals = np.asarray(values, dtype=np.float64) + 0.0  # -0.0 is 0.0
    with np.errstate(over="ignore"):
        hashes = _splitmix64(vals.view(np.uint64))
    m = 2 * k
    while True:
        if m >= hashes.size:
            head_h, head_v = hashes, vals
        else:
            head = np.argpartition(hashes, m - 1)[:m]
            head_h, head_v = hashes[head], vals[head]
        distinct, first = np.unique(head_v, return_index=True)
        if distinct.size >= k or m >= hashes.size:
            return _bottom(head_h[first], distinct, k)
        m *= 2


def merge_samples(samples: list[Sample], k: int) -> Sample:
    """The bottom-``k`` sample of the union of the samples' tables (a value hashes the same
    everywhere, so a value in two samples is one entry)."""
    values = np.concatenate([s[1] for s in samples])
    hashes = np.concatenate([s[0] for s in samples])
    values, first = np.unique(values, return_index=True)
    return _bottom(hashes[first], values, k)


def grid_counts(
    values: npt.NDArray[np.float64], grid: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per grid point, how many ``values`` are at most it and how many are below it."""
    # sorted once (NumPy's vectorized sort), the counts are two binary searches per grid point:
    # 8 times faster than a binary search per value on 250,000 values and 4,000 points
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    le: npt.NDArray[np.int64] = np.searchsorted(ordered, grid, side="right").astype(np.int64)
    lt: npt.NDArray[np.int64] = np.searchsorted(ordered, grid, side="left").astype(np.int64)
    return le, lt


def grid_ks(
    grid: npt.NDArray[np.float64],
    le_x: npt.NDArray[np.int64],
    lt_x: npt.NDArray[np.int64],
    m: int,
    le_y: npt.NDArray[np.int64],
    lt_y: npt.NDArray[np.int64],
    n: int,
) -> tuple[float, float]:
    """Lower and upper bounds of the KS distance from the exact counts on the grid (module
    docstring); equal when no value of either table lies strictly between grid points."""
    if m == 0 or n == 0:
        return float("nan"), float("nan")
    fx, fy = le_x / m, le_y / n
    fx_below, fy_below = lt_x / m, lt_y / n
    if grid.size == 0:
        return 0.0, 1.0
    low = float(max(np.max(np.abs(fx - fy)), np.max(np.abs(fx_below - fy_below))))
    # between g_i and g_{i+1} (g_0 = -inf: CDFs 0; g_{G+1} = +inf: CDFs just below are 1)
    start_x, start_y = np.concatenate(([0.0], fx)), np.concatenate(([0.0], fy))
    end_x, end_y = np.concatenate((fx_below, [1.0])), np.concatenate((fy_below, [1.0]))
    gap = float(max(np.max(end_x - start_y), np.max(end_y - start_x)))
    return low, max(low, gap)
