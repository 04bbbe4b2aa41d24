"""Gaussian-kernel helpers shared by the density-ratio estimators (uLSIF, KLIEP, KMM)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["gaussian_kernel", "median_bandwidth", "sq_distances"]

FloatArray = npt.NDArray[np.float64]


def sq_distances(a: FloatArray, b: FloatArray) -> FloatArray:
    """Squared Euclidean distances between the rows of ``a`` and ``b`` (never negative).

    Examples
    --------
    >>> import numpy as np
    >>> sq_distances(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]]))
    array([[25.]])
    """
    d = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.asarray(np.maximum(d, 0.0), dtype=np.float64)


def gaussian_kernel(a: FloatArray, b: FloatArray, sigma: float) -> FloatArray:
    r"""Gaussian kernel matrix :math:`k(a, b) = \exp(-\lVert a - b\rVert^2 / (2\sigma^2))`.

    Examples
    --------
    >>> import numpy as np
    >>> float(gaussian_kernel(np.zeros((1, 1)), np.ones((1, 1)), 1.0)[0, 0])
    0.6065...
    """
    return np.exp(-sq_distances(a, b) / (2.0 * sigma * sigma))


def median_bandwidth(x: FloatArray, rng: np.random.Generator, *, max_points: int = 500) -> float:
    """The median heuristic: median pairwise distance of (a subsample of) ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(200, 2))
    >>> 1.5 < median_bandwidth(x, np.random.default_rng(0)) < 2.2
    True
    """
    if x.shape[0] > max_points:
        x = x[rng.choice(x.shape[0], size=max_points, replace=False)]
    d = np.sqrt(sq_distances(x, x)[np.triu_indices(x.shape[0], k=1)])
    med = float(np.median(d)) if d.size else 1.0
    return med if med > 0 else 1.0
