"""The random-feature MMD test: mergeable mean embeddings and a Hotelling test on their difference.

Random Fourier features turn a shift-invariant kernel into an explicit finite map: with
``D = n_features / 2`` frequencies ``w_j`` drawn from the kernel's spectral density,

.. math:: \\varphi(x) = D^{-1/2}\\,[\\cos(w_1^\\top x), \\dots, \\cos(w_D^\\top x),
          \\sin(w_1^\\top x), \\dots, \\sin(w_D^\\top x)],
          \\qquad \\varphi(x)^\\top\\varphi(y) = \\tfrac1D \\sum_j \\cos(w_j^\\top (x - y))
          \\approx k(x, y),

(``w ~ N(0, σ⁻² I)`` for the Gaussian kernel, a multivariate Cauchy with scale ``1/σ`` for
the Laplacian ``exp(-||x - y|| / σ)``). Everything the test needs is a sum over rows: the
count, the mean of ``φ`` and the centred scatter matrix ``Σ (φ - φ̄)(φ - φ̄)ᵀ``. Summaries of
row chunks (or of a Dask table's partitions) merge exactly (Chan et al.'s pairwise update),
so the test is the same whichever way the rows are split.

The statistic is the unbiased MMD² of the feature map (``||φ(x)||² = 1`` exactly):

.. math:: \\widehat{\\mathrm{MMD}}^2_u = \\frac{\\lVert S_x\\rVert^2 - m}{m(m-1)}
          + \\frac{\\lVert S_y\\rVert^2 - n}{n(n-1)} - \\frac{2 S_x^\\top S_y}{mn},
          \\qquad S_x = \\sum_i \\varphi(x_i).

The p-value is Hotelling's two-sample test of ``E φ(X) = E φ(Y)``: with the pooled
covariance ``Σ̂`` and ``δ = φ̄_x - φ̄_y``, ``T² = δᵀ[Σ̂ (1/m + 1/n)]⁺ δ`` on the ``p``
directions where ``Σ̂`` is not negligible, and ``T² (N - p - 1) / (p (N - 2))`` is compared
with ``F(p, N - p - 1)``. Under H0 (one distribution) both samples share the features' mean
and covariance, so the test has level α asymptotically (exactly for Gaussian features); its
power is against differences the ``D`` random frequencies see.

References
----------
Rahimi, A., Recht, B. (2007). Random features for large-scale kernel machines. NeurIPS.
Chwialkowski, K., Ramdas, A., Sejdinovic, D., Gretton, A. (2015). Fast two-sample testing with
analytic representations of probability measures. NeurIPS. Zhao, J., Meng, D. (2015).
FastMMD: ensemble of circular discrepancy for efficient two-sample test. Neural Computation.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import stats

from nndoctor.shift._common import smallest_pvalue

__all__ = [
    "CHUNK_BYTES",
    "DEFAULT_FEATURES",
    "RANK_TOL",
    "frequencies",
    "hotelling",
    "merge",
    "summarize",
]

FloatArray = npt.NDArray[np.float64]
#: One row chunk's feature block is at most this many bytes (memory bounded per partition).
CHUNK_BYTES = 32 * 2**20
#: Random features (cos and sin of ``DEFAULT_FEATURES / 2`` frequencies).
DEFAULT_FEATURES = 100
#: Directions of the pooled covariance with an eigenvalue below ``RANK_TOL`` times the largest
#: are left out of Hotelling's statistic (and of its degrees of freedom).
RANK_TOL = 1e-10

#: A summary: (rows, mean of the features, centred scatter matrix).
Summary = tuple[int, FloatArray, FloatArray]


def frequencies(
    d: int, n_features: int, kernel: str, bandwidth: float, rng: np.random.Generator
) -> FloatArray:
    """The ``d x n_features/2`` random frequencies of the kernel's spectral density."""
    w: FloatArray = rng.standard_normal((d, n_features // 2)) / bandwidth
    if kernel == "laplacian":  # multivariate Cauchy: a Gaussian over an independent |N(0, 1)|
        w = w / np.abs(rng.standard_normal(n_features // 2))
    return w


def summarize(x: FloatArray, w: FloatArray) -> Summary:
    """Rows, feature mean and centred scatter of ``x``, in chunks of at most ``CHUNK_BYTES``."""
    k = 2 * w.shape[1]
    total: Summary = (0, np.zeros(k), np.zeros((k, k)))
    rows = max(1, CHUNK_BYTES // (8 * (k + w.shape[0])))
    for start in range(0, x.shape[0], rows):
        proj = x[start : start + rows] @ w
        phi = np.concatenate((np.cos(proj), np.sin(proj)), axis=1) / math.sqrt(w.shape[1])
        mean = phi.mean(0)
        centred = phi - mean
        total = merge(total, (phi.shape[0], mean, centred.T @ centred))
    return total


def merge(a: Summary, b: Summary) -> Summary:
    """Two summaries as one (Chan, Golub & LeVeque's pairwise update; exact)."""
    (na, ma, sa), (nb, mb, sb) = a, b
    if nb == 0:
        return a
    if na == 0:
        return b
    n = na + nb
    delta = mb - ma
    return n, ma + delta * (nb / n), sa + sb + np.outer(delta, delta) * (na * nb / n)


def hotelling(sx: Summary, sy: Summary) -> tuple[float, float, dict[str, float | int]]:
    """The unbiased MMD² of the features, Hotelling's p-value, and the test's numbers.

    Returns NaN for both when ``N - p - 1 < 1`` (fewer rows than features); the caller warns.
    """
    (m, mx, qx), (n, my, qy) = sx, sy
    big = m + n
    s_x, s_y = m * mx, n * my
    statistic = (
        (s_x @ s_x - m) / (m * (m - 1)) + (s_y @ s_y - n) / (n * (n - 1)) - 2 * s_x @ s_y / (m * n)
    )
    cov = (qx + qy) / (big - 2) * (1.0 / m + 1.0 / n)
    lam, vec = np.linalg.eigh((cov + cov.T) / 2)
    keep = lam > RANK_TOL * max(float(lam[-1]), 0.0) if lam[-1] > 0 else np.zeros_like(lam, bool)
    p = int(keep.sum())
    df2 = big - p - 1
    if p == 0 or df2 < 1:
        return float(statistic), math.nan, {"rank": p, "hotelling_t2": math.nan}
    proj = vec[:, keep].T @ (mx - my)
    t2 = float(np.sum(proj * proj / lam[keep]))
    f = t2 * df2 / (p * (big - 2))
    pvalue = smallest_pvalue(float(stats.f.sf(f, p, df2)))
    return float(statistic), pvalue, {"rank": p, "hotelling_t2": t2, "df_denominator": df2}
