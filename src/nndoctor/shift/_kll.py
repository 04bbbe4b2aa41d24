"""KLL quantile sketches, read back on the client: the shared kernels of the Dask paths.

The per-feature tests (``shift/_dask.py``) and BBSD's per-class KS (``shift/_dask_models.py``)
reduce each partition to an Apache DataSketches ``kll_doubles_sketch`` and merge the sketches;
this module turns two merged sketches into a KS distance, its error bound and a conservative
p-value. It sits below both (and imports the in-memory KS only inside a function), so neither
Dask module has to import the other.

The bound: a KLL sketch's rank estimate is within its normalized rank error ``ε`` of the true
rank (99 % confidence, as DataSketches states it), so ``|D_sketch - D| <= ε_x + ε_y``, and the
p-value is read at ``max(0, D_sketch - ε_x - ε_y)``: never smaller than the exact test's.

>>> import numpy as np
>>> from datasketches import kll_doubles_sketch
>>> from nndoctor.shift._kll import SKETCH_K, sketch_ks
>>> a, b = kll_doubles_sketch(SKETCH_K), kll_doubles_sketch(SKETCH_K)
>>> for v in np.arange(100.0): a.update(v)
>>> for v in np.arange(50.0, 150.0): b.update(v)
>>> d, err, p = sketch_ks(a.serialize(), b.serialize(), 100, 100)
>>> round(d, 2), err, p < 1e-6
(0.5, 0.0, True)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["SKETCH_K", "cdf_at", "ks_pvalue", "sketch_ks", "weighted_cdf"]

FloatArray = npt.NDArray[np.float64]

#: KLL parameter k: normalized rank error about 0.14% per sketch (single-rank queries).
SKETCH_K = 2000


def weighted_cdf(blob: bytes) -> tuple[FloatArray, FloatArray, float]:
    """A KLL sketch's retained values (sorted), their cumulative weights, and its rank error."""
    from datasketches import kll_doubles_sketch

    sketch = kll_doubles_sketch.deserialize(blob)
    pairs = np.array(list(sketch), dtype=np.float64).reshape(-1, 2)
    order = np.argsort(pairs[:, 0], kind="stable")
    eps = sketch.normalized_rank_error(False) if sketch.is_estimation_mode() else 0.0
    return pairs[order, 0], np.cumsum(pairs[order, 1]), float(eps)


def cdf_at(values: FloatArray, weights: FloatArray, at: FloatArray) -> FloatArray:
    """A sketch's CDF (sorted retained ``values``, cumulative ``weights``) at the points ``at``."""
    cdf: FloatArray = (
        np.concatenate(([0.0], weights))[np.searchsorted(values, at, side="right")] / weights[-1]
    )
    return cdf


def ks_pvalue(d: float, m: int, n: int) -> float:
    """The two-sided KS p-value of distance ``d`` for sizes ``m`` and ``n`` (as in memory)."""
    from nndoctor.shift._univariate import KS_EXACT_MAX_N, _ks_2samp, kolmogorov_sf

    if max(m, n) <= KS_EXACT_MAX_N:  # exact recursion: only the sizes are read
        return float(_ks_2samp(np.zeros(m), np.zeros(n), statistic=d).pvalue)
    return kolmogorov_sf(d, round(m * n / (m + n)))


def sketch_ks(bx: bytes, by: bytes, m: int, n: int) -> tuple[float, float, float]:
    """KS distance of two sketches, its error bound and the conservative p-value."""
    vx, wx, ex = weighted_cdf(bx)
    vy, wy, ey = weighted_cdf(by)
    grid = np.unique(np.concatenate((vx, vy)))
    d = float(np.max(np.abs(cdf_at(vx, wx, grid) - cdf_at(vy, wy, grid))))
    err = ex + ey
    return d, err, ks_pvalue(max(0.0, d - err), m, n)
