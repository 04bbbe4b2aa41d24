"""Maximum mean discrepancy: a permutation test in batch, and a linear-time block test.

The kernel work is done with torch on the inputs' device (CPU for NumPy and pandas inputs, the
GPU for CUDA tensors), in float64, in row blocks whose size is bounded in bytes, so that the
pooled kernel matrix is never held whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt
import torch
from scipy import stats

from nndoctor._validation import check_choice, check_int, check_random_state
from nndoctor.exceptions import InvalidParameterError
from nndoctor.shift import _rff
from nndoctor.shift._common import (
    TwoSampleResult,
    as_float_tensors,
    canonical_order,
    check_alpha,
    display_names,
    limit_threads,
    smallest_pvalue,
    warn_small,
)
from nndoctor.shift._engines import dask_impl, is_dask

__all__ = [
    "LINEAR_TIME_THRESHOLD",
    "MAX_PERMUTATIONS",
    "median_bandwidth",
    "mmd_test",
    "rff_result",
]

Kernel = Literal["rbf", "laplacian"]
MMDMethod = Literal["auto", "permutation", "block", "rff"]

#: Pooled sample size (source + target rows) above which ``method="auto"`` switches from the
#: quadratic-time permutation test to the linear-time block test.
LINEAR_TIME_THRESHOLD = 50_000
#: Upper bound, in bytes, of one block of kernel rows held in memory at once.
DEFAULT_BLOCK_BYTES = 256 * 2**20
#: The most permutations a permutation test takes. A permutation p-value moves in steps of
#: 1/(B + 1): a million permutations resolve it to 1e-6, far below any level a decision uses,
#: and more would only cost time (the work grows as N²·B).
MAX_PERMUTATIONS = 1_000_000
#: Upper bound, in bytes, of the split-indicator columns held at once (the permutations are
#: evaluated in chunks of columns, so memory does not grow with B).
INDICATOR_BYTES = 64 * 2**20
#: How many pooled points the median heuristic looks at (a random subsample above this).
MEDIAN_SUBSAMPLE = 1_000
_KERNELS = tuple(sorted(get_args(Kernel)))


def _sqdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a2 = (a * a).sum(1)
    b2 = (b * b).sum(1)
    d2 = torch.addmm(b2[None, :], a, b.T, alpha=-2.0).add_(a2[:, None])
    return d2.clamp_min_(0.0)


def _kernel_from_sqdist(d2: torch.Tensor, kernel: str, bandwidth: float) -> torch.Tensor:
    if kernel == "rbf":
        return d2.mul_(-0.5 / bandwidth**2).exp_()
    return d2.sqrt_().mul_(-1.0 / bandwidth).exp_()


def _bmm_sqdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a2 = (a * a).sum(-1)
    b2 = (b * b).sum(-1)
    d2 = a2[..., :, None] + b2[..., None, :] - 2.0 * torch.bmm(a, b.transpose(1, 2))
    return d2.clamp_min_(0.0)


def median_bandwidth(
    Z: Any, *, max_points: int = MEDIAN_SUBSAMPLE, random_state: Any = None
) -> float:
    """The median heuristic: the median pairwise Euclidean distance of a sample.

    Above ``max_points`` rows a random subsample of that size is used.

    .. math:: \\sigma = \\operatorname{median}\\{\\lVert z_i - z_j \\rVert : i < j\\}

    Parameters
    ----------
    Z : array-like or tensor of shape (n, d)
        The pooled sample.
    max_points : int
        Size of the subsample the median is taken on.
    random_state : None, int or numpy Generator
        Seed of the subsample.

    Returns
    -------
    float
        The bandwidth (the mean distance when the median is 0; 1.0 when all points coincide).

    References
    ----------
    Gretton, A., et al. (2012). A kernel two-sample test. JMLR 13, 723-773.

    Examples
    --------
    >>> import numpy as np
    >>> round(median_bandwidth(np.array([[0.0], [1.0], [3.0]])), 6)
    2.0
    """
    z = Z if isinstance(Z, torch.Tensor) else torch.from_numpy(np.array(Z, dtype=np.float64))
    z = z.to(torch.float64)
    if z.ndim == 1:
        z = z[:, None]
    rng = check_random_state(random_state)
    if z.shape[0] > max_points:
        idx = rng.choice(z.shape[0], size=max_points, replace=False)
        z = z[torch.from_numpy(idx).to(z.device)]
    z = z - z.mean(0, keepdim=True)
    k = z.shape[0]
    if k < 2:
        return 1.0
    # all off-diagonal squared distances (each pair twice: the median is unchanged)
    off = _sqdist(z, z).flatten()[1:].view(k - 1, k + 1)[:, :-1]
    on_cpu = off.device.type == "cpu"
    med2 = float(np.median(off.numpy())) if on_cpu else float(off.median().item())
    if med2 > 0.0:
        return math.sqrt(med2)
    pos = off[off > 0]
    return float(pos.sqrt().mean().item()) if pos.numel() else 1.0


def _resolve_bandwidth(
    bandwidth: Any, z: torch.Tensor, rng: np.random.Generator
) -> tuple[float, str]:
    if isinstance(bandwidth, str):
        check_choice(bandwidth, ("median",), name="bandwidth")
        return median_bandwidth(z, random_state=rng), "median"
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, int | float | np.number):
        raise InvalidParameterError(
            f"bandwidth must be a positive number or 'median', got {bandwidth!r}"
        )
    bw = float(bandwidth)
    if not (bw > 0.0 and math.isfinite(bw)):
        raise InvalidParameterError(f"bandwidth must be a positive finite number, got {bw}")
    return bw, "fixed"


def _indicators(
    N: int, m: int, n_permutations: int, rng: np.random.Generator, device: torch.device
) -> torch.Tensor:
    """Column 0: the observed split (first m rows are X); columns 1..B: random splits."""
    A = torch.zeros((N, n_permutations + 1), dtype=torch.float64, device=device)
    A[:m, 0] = 1.0
    chunk = max(1, min(n_permutations, INDICATOR_BYTES // max(1, 8 * N)))
    base = np.arange(N, dtype=np.int64)
    for start in range(0, n_permutations, chunk):
        stop = min(n_permutations, start + chunk)
        perms = rng.permuted(np.broadcast_to(base, (stop - start, N)), axis=1)[:, :m]
        idx = torch.from_numpy(np.ascontiguousarray(perms.T)).to(device)
        A[:, 1 + start : 1 + stop].scatter_(0, idx, 1.0)
    return A


def check_permutations(n_permutations: Any, name: str = "n_permutations") -> int:
    """``n_permutations`` as an int in ``[1, MAX_PERMUTATIONS]``; more is refused, with why.

    Examples
    --------
    >>> check_permutations(10**7)
    Traceback (most recent call last):
    ...
    nndoctor.exceptions.InvalidParameterError: n_permutations = 10000000 is more than ...
    """
    B = check_int(n_permutations, name=name, minimum=1)
    if B > MAX_PERMUTATIONS:
        raise InvalidParameterError(
            f"{name} = {B} is more than the maximum of {MAX_PERMUTATIONS:,}: a permutation "
            f"p-value moves in steps of 1/(B + 1), so {MAX_PERMUTATIONS:,} already resolve it to "
            "1e-6, and the work grows with B; pass at most that many (1000 is usually enough)"
        )
    return B


def _chunked_permutation_statistics(
    z: torch.Tensor,
    m: int,
    n_permutations: int,
    kernel: str,
    bandwidth: float,
    block_bytes: int,
    rng: np.random.Generator,
    *,
    k_xx: torch.Tensor | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> torch.Tensor:
    """The observed statistic and ``n_permutations`` permuted ones, the splits generated and
    evaluated in chunks of columns of at most ``INDICATOR_BYTES`` (memory bounded in B).

    The chunk is :func:`_indicators`' own chunk (the same ``INDICATOR_BYTES``), so the random
    splits are those of a single pass whenever one chunk holds them all."""
    N = z.shape[0]
    chunk = max(1, INDICATOR_BYTES // (8 * N))
    out: list[torch.Tensor] = []
    done = 0
    while done < n_permutations:
        size = min(chunk, n_permutations - done)
        A = _indicators(N, m, size, rng, z.device)
        if done:
            A = A[:, 1:]  # the observed split is column 0 of the first chunk only
        out.append(_permutation_statistics(z, m, A, kernel, bandwidth, block_bytes, k_xx=k_xx))
        done += size
        if progress is not None:
            progress(done / n_permutations, f"{done:,} of {n_permutations:,} permutations")
    return torch.cat(out)


def _permutation_statistics(
    z: torch.Tensor,
    m: int,
    A: torch.Tensor,
    kernel: str,
    bandwidth: float,
    block_bytes: int,
    k_xx: torch.Tensor | None = None,
) -> torch.Tensor:
    """Unbiased MMD² for every column of the indicator matrix ``A`` (1 = in the first sample).

    With ``K0`` the pooled kernel matrix with a zero diagonal, ``r = K0 1`` and ``S = 1ᵀ r``, a
    split ``a`` has ``Sxx = aᵀK0a``, ``Sxy = aᵀr - Sxx`` and ``Syy = S - 2aᵀr + Sxx``. ``aᵀK0a``
    for all splits at once is ``colsum(A ∘ K0A)``; ``K0`` is visited in blocks of rows (upper
    triangle only, by symmetry) and never held whole. ``k_xx``, when given, is the zero-diagonal
    kernel matrix of the first ``len(k_xx)`` rows (cached by a fitted detector).
    """
    N = z.shape[0]
    n = N - m
    rows = max(1, min(N, block_bytes // (8 * N)))
    sxx = torch.zeros(A.shape[1], dtype=torch.float64, device=z.device)
    r = torch.zeros(N, dtype=torch.float64, device=z.device)
    for start in range(0, N, rows):
        stop = min(N, start + rows)
        if k_xx is not None and stop <= k_xx.shape[0]:
            kb = torch.cat(
                (
                    k_xx[start:stop, start:],
                    _kernel_from_sqdist(
                        _sqdist(z[start:stop], z[k_xx.shape[0] :]), kernel, bandwidth
                    ),
                ),
                dim=1,
            )
        else:
            kb = _kernel_from_sqdist(_sqdist(z[start:stop], z[start:]), kernel, bandwidth)
        # zero the diagonal of the square block
        kb[:, : stop - start].fill_diagonal_(0.0)
        a_blk = A[start:stop]
        square = kb[:, : stop - start]
        rest = kb[:, stop - start :]
        sxx += (a_blk * (square @ a_blk)).sum(0)
        r[start:stop] += kb.sum(1)
        if rest.shape[1]:
            sxx += 2.0 * (a_blk * (rest @ A[stop:])).sum(0)
            r[stop:] += rest.sum(0)
    total = r.sum()
    ar = A.T @ r
    sxy = ar - sxx
    syy = total - 2.0 * ar + sxx
    return sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2.0 * sxy / (m * n)


def _block_statistics(
    x: torch.Tensor,
    y: torch.Tensor,
    kernel: str,
    bandwidth: float,
    block_size: int,
    rng: np.random.Generator,
    block_bytes: int,
) -> tuple[torch.Tensor, int, int]:
    """Unbiased MMD² of each of ``n_blocks`` disjoint blocks (random rows of each sample)."""
    m, n = x.shape[0], y.shape[0]
    n_blocks = max(1, min(m, n) // block_size)
    bx, by = m // n_blocks, n // n_blocks
    ix = torch.from_numpy(rng.permutation(m)[: n_blocks * bx]).to(x.device)
    iy = torch.from_numpy(rng.permutation(n)[: n_blocks * by]).to(y.device)
    per_block = 8 * (bx + by) ** 2
    chunk = max(1, block_bytes // max(1, per_block))
    out = []
    for start in range(0, n_blocks, chunk):
        stop = min(n_blocks, start + chunk)
        xb = x[ix[start * bx : stop * bx]].reshape(stop - start, bx, -1)
        yb = y[iy[start * by : stop * by]].reshape(stop - start, by, -1)
        kxx = _kernel_from_sqdist(_bmm_sqdist(xb, xb), kernel, bandwidth)
        kyy = _kernel_from_sqdist(_bmm_sqdist(yb, yb), kernel, bandwidth)
        kxy = _kernel_from_sqdist(_bmm_sqdist(xb, yb), kernel, bandwidth)
        sxx = kxx.sum((1, 2)) - kxx.diagonal(dim1=1, dim2=2).sum(1)
        syy = kyy.sum((1, 2)) - kyy.diagonal(dim1=1, dim2=2).sum(1)
        out.append(sxx / (bx * (bx - 1)) + syy / (by * (by - 1)) - 2.0 * kxy.mean((1, 2)))
    return torch.cat(out), bx, by


def default_block_size(n: int) -> int:
    """Rows per block of the block test: ``√n``, but small enough for at least 100 blocks.

    Many blocks keep the Student-t approximation of the mean of the (skewed) block statistics
    accurate; ``√n`` blocks of ``√n`` rows balance power and time for large ``n``.

    Examples
    --------
    >>> default_block_size(1_000_000), default_block_size(400)
    (1000, 4)
    """
    return max(2, min(math.isqrt(n), n // 100))


def mmd_test(
    X: Any,
    Y: Any,
    *,
    kernel: Kernel = "rbf",
    bandwidth: float | Literal["median"] = "median",
    n_permutations: int = 1000,
    method: MMDMethod = "auto",
    standardize: bool = False,
    alpha: float = 0.05,
    block_size: int | None = None,
    max_block_bytes: int = DEFAULT_BLOCK_BYTES,
    random_state: Any = None,
    names: tuple[str, str] | None = None,
    progress: Callable[[float, str], None] | None = None,
    n_features: int = _rff.DEFAULT_FEATURES,
) -> TwoSampleResult:
    """Kernel two-sample test with the maximum mean discrepancy (MMD).

    H0: X and Y are drawn from the same distribution; H1: they are not. The statistic is the
    unbiased estimate of MMD² with the kernel ``k``:

    .. math::

        \\widehat{\\mathrm{MMD}}^2_u = \\frac{1}{m(m-1)}\\sum_{i \\ne j} k(x_i, x_j)
        + \\frac{1}{n(n-1)}\\sum_{i \\ne j} k(y_i, y_j)
        - \\frac{2}{mn}\\sum_{i, j} k(x_i, y_j),

    with ``k(x, y) = exp(-||x - y||² / (2σ²))`` (``"rbf"``) or ``exp(-||x - y|| / σ)``
    (``"laplacian"``), and σ = ``bandwidth`` (``"median"``: the median pairwise distance of the
    pooled sample, on a random subsample of 1,000 points when larger; it does not depend on the
    split, so the permutation test stays exact).

    ``method="permutation"``: the p-value is ``(1 + #{T* >= T}) / (1 + B)`` over ``B`` random
    splits of the pooled sample, never 0. All permutations are evaluated in one pass over the
    kernel matrix (as matrix products with the split-indicator matrix), in row blocks of at most
    ``max_block_bytes``, so memory grows as ``N·(B + block rows)`` rather than ``N²``.

    ``method="block"`` (linear time): the B-test. Each sample is split at random into ``b``
    disjoint blocks of about ``block_size`` rows (default ``√min(m, n)``, smaller when that
    leaves fewer than 100 blocks); the block MMD²
    estimates are independent and unbiased, and their mean divided by its standard error is
    compared with Student's t on ``b - 1`` degrees of freedom (one-sided), which is valid as the
    number of blocks grows. ``method="auto"`` uses the permutation test up to
    ``LINEAR_TIME_THRESHOLD`` = 50,000 pooled rows and the block test above.

    ``method="rff"`` (linear time, mergeable): ``n_features`` random Fourier features of the
    kernel; the statistic is their unbiased MMD², the p-value Hotelling's test of equal feature
    means (F law, asymptotically valid; :mod:`nndoctor.shift._rff`). Dask inputs
    (``dask.dataframe.DataFrame`` or ``dask.array.Array``) always get this test
    (``method="auto"`` or ``"rff"``): each partition is reduced to the features' count, mean
    and scatter matrix (``n_features² + n_features + 1`` floats, about 80 KB), merged on the
    client; the median bandwidth (and with ``standardize`` the column scales) come from a
    random sample of about 1,000 rows of each table, the number stated in
    ``details["bandwidth_sample"]``. Nothing else travels to the client.

    Parameters
    ----------
    X, Y : array-like, DataFrame or tensor of shape (m, d) and (n, d)
        The two samples. With a CUDA tensor the kernel work stays on that GPU.
    kernel : {"rbf", "laplacian"}
    bandwidth : float or "median"
    n_permutations : int
        Number of random splits ``B`` (permutation method).
    method : {"auto", "permutation", "block", "rff"}
    standardize : bool
        Scale each column by the pooled standard deviation first (split-invariant, so exact).
    alpha : float
        Level of ``drift_detected``.
    block_size : int, optional
        Rows per block for the block test.
    max_block_bytes : int
        Memory bound of one block of kernel rows.
    progress : callable, optional
        ``progress(fraction, text)`` after each chunk of permutations (the command line draws
        a bar). The permutations are evaluated in chunks of split-indicator columns of at most
        64 MiB, so memory does not grow with ``n_permutations``; more than
        ``MAX_PERMUTATIONS`` (1,000,000) is refused.
    random_state : None, int or numpy Generator
        Seed of the permutations (and of the median subsample and the block assignment).
    names : (str, str), optional
        What error messages call X and Y (default ``"X"`` and ``"Y"``).
    n_features : int
        Random features of the ``"rff"`` test (an even number: cosines and sines of
        ``n_features / 2`` frequencies).

    Returns
    -------
    TwoSampleResult
        ``statistic`` (MMD²), ``pvalue``, ``null_distribution`` (the ``B`` permuted values),
        and in ``details`` the kernel, the bandwidth and, for the block test, the block sizes;
        for the ``"rff"`` test the number of features, Hotelling's ``T²`` and its degrees of
        freedom (``rank``, ``df_denominator``).

    Notes
    -----
    Fewer than 2 rows in a sample (4 blocks for the block test) warns with
    :class:`~nndoctor.exceptions.SmallSampleWarning` and returns NaN.

    References
    ----------
    Gretton, A., Borgwardt, K., Rasch, M., Schölkopf, B., Smola, A. (2012). A kernel two-sample
    test. JMLR 13, 723-773. Zaremba, W., Gretton, A., Blaschko, M. (2013). B-tests: low variance
    kernel two-sample tests. NeurIPS. Rahimi, A., Recht, B. (2007). Random features for
    large-scale kernel machines. NeurIPS. Chwialkowski, K., et al. (2015). Fast two-sample
    testing with analytic representations of probability measures. NeurIPS.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 3))
    >>> Y = rng.normal(size=(100, 3)) + [1.0, 0.0, 0.0]
    >>> res = mmd_test(X, Y, n_permutations=200, random_state=0)
    >>> res.pvalue
    0.004975...
    >>> res.drift_detected
    True
    """
    alpha, max_block_bytes, n_features = _check_options(
        kernel, method, alpha, max_block_bytes, n_permutations, block_size, n_features
    )
    if is_dask(X) or is_dask(Y):  # random features, merged across partitions (see _dask_mmd)
        result: TwoSampleResult = dask_impl("mmd_test")(
            X, Y, kernel=kernel, bandwidth=bandwidth, method=method, n_features=n_features,
            standardize=standardize, alpha=alpha, random_state=random_state,
            names=names)  # fmt: skip
        return result
    rng = check_random_state(random_state)
    x, y = as_float_tensors(X, Y, names=display_names(names))
    m, n = x.shape[0], y.shape[0]
    use = _pick_method(method, m + n)
    if use == "rff":  # as on Dask, where the same rows give the same result
        z = _pooled(x, y, standardize)
        return _rff_in_memory(z, m, kernel, bandwidth, n_features, alpha, rng)
    z = _pooled(canonical_rows(x, rng), canonical_rows(y, rng), standardize)
    if use == "permutation":
        B = check_permutations(n_permutations)
        return _permutation_test(z, m, kernel, bandwidth, B, max_block_bytes, alpha, rng, progress)
    return _block_test(z, m, kernel, bandwidth, block_size, max_block_bytes, alpha, rng)


def canonical_rows(t: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """The rows of ``t`` in a random order that does not depend on the input's order.

    Rows are first put in their canonical order (:func:`~nndoctor.shift._common.canonical_order`:
    sorted by a hash of their values' ranks within each column, so the same order in any units),
    then in the order of a permutation drawn from ``rng``: a uniformly random order, as the tests
    assume, and the same one however the table was ordered. The bandwidth's subsample, the
    permutations and the linear-time test's pairs then see the same rows in the same places for
    the same ``random_state``, so that the p-value does not depend on the order of the rows, nor
    (with ``standardize=True``) on the columns' units.

    Examples
    --------
    >>> t = torch.tensor([[3.0, 0.0], [1.0, 2.0], [2.0, 2.0]])
    >>> a = canonical_rows(t, np.random.default_rng(0))
    >>> torch.equal(a, canonical_rows(t[[2, 0, 1]], np.random.default_rng(0)))
    True
    """
    if t.shape[0] < 2 or t.shape[1] == 0:
        return t
    order = canonical_order(t)[rng.permutation(t.shape[0])]
    return t[torch.from_numpy(order).to(t.device)]


def _check_options(
    kernel: Any,
    method: Any,
    alpha: Any,
    max_block_bytes: Any,
    n_permutations: Any,
    block_size: Any,
    n_features: Any,
) -> tuple[float, int, int]:
    """Check every option whichever test runs, so that a bad value is never silently ignored."""
    check_choice(kernel, _KERNELS, name="kernel")
    check_choice(method, ("auto", "block", "permutation", "rff"), name="method")
    alpha = check_alpha(alpha)
    max_block_bytes = check_int(max_block_bytes, name="max_block_bytes", minimum=1024)
    check_permutations(n_permutations)
    if block_size is not None:
        check_int(block_size, name="block_size", minimum=2)
    return alpha, max_block_bytes, _check_features(n_features)


def _pick_method(method: str, pooled_rows: int) -> str:
    """The test ``method`` names; ``"auto"``: permutation up to ``LINEAR_TIME_THRESHOLD`` rows."""
    if method != "auto":
        return method
    return "block" if pooled_rows > LINEAR_TIME_THRESHOLD else "permutation"


def _pooled(x: torch.Tensor, y: torch.Tensor, standardize: bool) -> torch.Tensor:
    """The pooled rows, centred, and scaled by the pooled standard deviation if asked."""
    z = torch.cat((x, y), 0)
    z = z - z.mean(0, keepdim=True)
    if standardize:
        sd = z.std(0, keepdim=True)
        z = z / torch.where(sd > 0, sd, torch.ones_like(sd))
    return z


def _permutation_test(
    z: torch.Tensor,
    m: int,
    kernel: str,
    bandwidth: Any,
    B: int,
    max_block_bytes: int,
    alpha: float,
    rng: np.random.Generator,
    progress: Callable[[float, str], None] | None,
) -> TwoSampleResult:
    """The permutation test on the pooled rows ``z`` (the first ``m`` are X); NaN below 2 rows."""
    n = z.shape[0] - m
    if min(m, n) < 2:
        warn_small(
            f"the permutation MMD needs at least 2 rows per sample, got {m} and {n}; "
            "the result is NaN"
        )
        return _nan_result("mmd-permutation", m, n, alpha, B)
    with limit_threads(float(m + n) ** 2 * (B + 1 + z.shape[1]), z.device):
        bw, bw_rule = _resolve_bandwidth(bandwidth, z, rng)
        values = _chunked_permutation_statistics(
            z, m, B, kernel, bw, max_block_bytes, rng, progress=progress
        )
    return _permutation_result(values.cpu().numpy(), m, n, alpha, kernel, bw, bw_rule)


def _block_test(
    z: torch.Tensor,
    m: int,
    kernel: str,
    bandwidth: Any,
    block_size: int | None,
    max_block_bytes: int,
    alpha: float,
    rng: np.random.Generator,
) -> TwoSampleResult:
    """The block test on the pooled rows ``z`` (the first ``m`` are X); NaN below 4 blocks."""
    n = z.shape[0] - m
    bs = block_size if block_size is not None else default_block_size(min(m, n))
    bs = check_int(bs, name="block_size", minimum=2)
    if min(m, n) // bs < 4 or min(m, n) < 4:
        warn_small(
            f"the block MMD needs at least 4 blocks of {bs} rows per sample, got {m} and {n} "
            "rows; the result is NaN (use method='permutation' for small samples)"
        )
        return _nan_result("mmd-block", m, n, alpha, None)
    work = float(min(m + n, MEDIAN_SUBSAMPLE)) ** 2 + 3.0 * (m + n) * bs * z.shape[1]
    with limit_threads(work, z.device):
        bw, bw_rule = _resolve_bandwidth(bandwidth, z, rng)
        eta, bx, by = _block_statistics(z[:m], z[m:], kernel, bw, bs, rng, max_block_bytes)
    return _block_result(eta.cpu().numpy(), m, n, alpha, kernel, bw, bw_rule, (bx, by))


def _block_result(
    eta_np: npt.NDArray[np.float64],
    m: int,
    n: int,
    alpha: float,
    kernel: str,
    bw: float,
    bw_rule: str,
    block_rows: tuple[int, int],
) -> TwoSampleResult:
    """The block statistics' mean against Student's t (one-sided) as the block test's result."""
    bx, by = block_rows
    nb = eta_np.shape[0]
    mean = float(eta_np.mean())
    se = float(eta_np.std(ddof=1)) / math.sqrt(nb)
    if se > 0:
        pvalue = smallest_pvalue(float(stats.t.sf(mean / se, df=nb - 1)))
    else:
        pvalue = 1.0 if mean <= 0 else smallest_pvalue(0.0)
    return TwoSampleResult(
        statistic=mean,
        pvalue=pvalue,
        method="mmd-block",
        n_source=m,
        n_target=n,
        alpha=alpha,
        drift_detected=bool(pvalue <= alpha),
        details={
            "kernel": kernel,
            "bandwidth": bw,
            "bandwidth_rule": bw_rule,
            "n_blocks": nb,
            "block_rows_source": bx,
            "block_rows_target": by,
            "standard_error": se,
        },
    )


def _check_features(n_features: Any) -> int:
    """``n_features`` as a positive even int (cosines and sines of the same frequencies)."""
    k = check_int(n_features, name="n_features", minimum=2)
    if k % 2:
        raise InvalidParameterError(
            f"n_features = {k} is odd; the random features come in cosine-sine pairs, so pass "
            f"an even number (e.g. {k + 1})"
        )
    return k


def _rff_in_memory(
    z: torch.Tensor,
    m: int,
    kernel: str,
    bandwidth: Any,
    n_features: int,
    alpha: float,
    rng: np.random.Generator,
) -> TwoSampleResult:
    """The random-feature test on the pooled, centred rows ``z`` (the first ``m`` are X)."""
    n = z.shape[0] - m
    if min(m, n) < 2:
        warn_small(f"the MMD needs at least 2 rows per sample, got {m} and {n}; the result is NaN")
        return _nan_result("mmd-rff", m, n, alpha, None)
    bw, bw_rule = _resolve_bandwidth(bandwidth, z, rng)
    w = _rff.frequencies(z.shape[1], n_features, kernel, bw, rng)
    zn = z.cpu().numpy()
    sx, sy = _rff.summarize(zn[:m], w), _rff.summarize(zn[m:], w)
    return rff_result(sx, sy, alpha, kernel, bw, bw_rule, n_features, {})


def rff_result(
    sx: _rff.Summary,
    sy: _rff.Summary,
    alpha: float,
    kernel: str,
    bw: float,
    bw_rule: str,
    n_features: int,
    extra: dict[str, Any],
) -> TwoSampleResult:
    """The random-feature test's result from the two samples' summaries (in memory or Dask)."""
    m, n = sx[0], sy[0]
    statistic, pvalue, numbers = _rff.hotelling(sx, sy)
    if not np.isfinite(pvalue):
        warn_small(
            f"the random-feature MMD needs more rows than feature directions with a variance: "
            f"{m + n} rows, {numbers['rank']} directions; the p-value is NaN (pass more rows or "
            "fewer n_features; constant data have no direction at all)"
        )
    return TwoSampleResult(
        statistic=statistic,
        pvalue=pvalue,
        method="mmd-rff",
        n_source=m,
        n_target=n,
        alpha=alpha,
        drift_detected=bool(pvalue <= alpha),
        details={
            "kernel": kernel,
            "bandwidth": bw,
            "bandwidth_rule": bw_rule,
            "n_features": n_features,
            **numbers,
            **extra,
        },
    )


def _nan_result(method: str, m: int, n: int, alpha: float, B: int | None) -> TwoSampleResult:
    return TwoSampleResult(
        statistic=float("nan"),
        pvalue=float("nan"),
        method=method,
        n_permutations=B,
        n_source=m,
        n_target=n,
        alpha=alpha,
        drift_detected=False,
    )


def _permutation_result(
    values: npt.NDArray[np.float64],
    m: int,
    n: int,
    alpha: float,
    kernel: str,
    bw: float,
    bw_rule: str,
) -> TwoSampleResult:
    observed = float(values[0])
    null = np.asarray(values[1:], dtype=np.float64)
    # ties up to rounding count as "at least as extreme" (as scipy.stats.permutation_test)
    tol = 1e-12 * max(1.0, abs(observed))
    B = null.shape[0]
    pvalue = float((1 + np.count_nonzero(null >= observed - tol)) / (1 + B))
    return TwoSampleResult(
        statistic=observed,
        pvalue=pvalue,
        method="mmd-permutation",
        n_permutations=B,
        null_distribution=null,
        n_source=m,
        n_target=n,
        alpha=alpha,
        drift_detected=bool(pvalue <= alpha),
        details={"kernel": kernel, "bandwidth": bw, "bandwidth_rule": bw_rule},
    )
