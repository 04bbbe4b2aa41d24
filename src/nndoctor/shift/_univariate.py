"""Per-feature tests: KS for numeric columns, χ² for categorical ones, with effect sizes.

Each column gets a test, a p-value adjusted for multiple testing, effect sizes with confidence
intervals, and a drift flag that needs both significance and, when ``min_effect`` is given, an
effect at least that large: a huge sample then does not turn a trivial change into an alarm.

Missing values (NaN, None, ``pd.NA``): by default each column's distribution test runs on its
observed values and the column's missing rate gets a test of its own (Pearson's χ² on the 2 x 2
table, Fisher's exact test when an expected count is below 5), in the same multiple-testing
family as the distribution tests.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from nndoctor._results import ResultMixin
from nndoctor._validation import (
    check_choice,
    check_int,
    check_random_state,
)
from nndoctor.exceptions import DataValidationError, InvalidParameterError
from nndoctor.shift._common import (
    aligned_frames,
    as_frame,
    check_alpha,
    display_names,
    infinite_values_error,
    is_categorical,
    smallest_pvalue,
    smallest_pvalues,
    warn_small,
)
from nndoctor.shift._engines import dask_impl, is_dask

__all__ = [
    "FeatureDrift",
    "FeatureTestResult",
    "MissingnessTest",
    "adjust_pvalues",
    "chi2_test",
    "feature_test",
    "ks_test",
]

Correction = Literal["bonferroni", "holm", "fdr_bh", "none"]
_CORRECTIONS = tuple(sorted(get_args(Correction)))
MissingPolicy = Literal["test", "drop", "category", "raise"]
_MISSING_POLICIES = tuple(sorted(get_args(MissingPolicy)))
#: The category that missing values of a categorical column become with ``missing="category"``.
MISSING_CATEGORY = "(missing)"
#: Sample size per side up to which the KS p-value is exact (as in scipy.stats.ks_2samp).
KS_EXACT_MAX_N = 10_000
#: Number of reference-quantile bins for the PSI.
PSI_BINS = 10
#: Pooled-quantile bins on which the Wasserstein bootstrap runs (fast for millions of rows).
BOOTSTRAP_BINS = 256
#: Mean rows per bin above which bootstrap counts use the multinomial's normal approximation.
NORMAL_BOOTSTRAP_MIN = 50
#: Expected count below which categories are merged into one "(rare)" category for χ².
MIN_EXPECTED = 5.0
_PSI_EPS = 1e-4


@dataclass(frozen=True, slots=True)
class MissingnessTest(ResultMixin):
    """Did the share of missing values of one column change between X and Y?

    H0: the probability that the column is missing is the same in both samples. With ``a`` and
    ``c`` missing values among ``m`` and ``n`` rows, the 2 x 2 table ``[[a, m - a], [c, n - c]]``
    is tested with Pearson's χ² (one degree of freedom, no continuity correction; this is the
    square of the pooled two-proportion z statistic), or with Fisher's exact test when an
    expected count is below 5:

    .. math::

        \\chi^2 = \\frac{N (a (n - c) - (m - a) c)^2}{m\\, n\\, (a + c)\\, (N - a - c)}, \\qquad
        \\phi = \\sqrt{\\chi^2 / N}, \\qquad N = m + n.

    Attributes
    ----------
    fraction_source, fraction_target : float
        Share of missing values in X and in Y.
    n_missing_source, n_missing_target : int
        Number of missing values in X and in Y.
    test : {"chi2", "fisher", "none"}
        How the p-value was computed; ``"none"`` when the policy does not test the rate
        (``missing="drop"``, or a categorical column with ``missing="category"``, whose χ² test
        counts the missing values as a category). The statistic and p-values are then NaN.
    statistic : float
        Pearson's χ² of the table (also reported when the p-value is Fisher's).
    pvalue : float
        Unadjusted p-value.
    adjusted_pvalue : float
        After the multiple-testing correction, which covers the distribution tests and the
        missingness tests of all columns together.
    effect : float
        φ, Cramér's V of the 2 x 2 table, in [0, 1]; compared with ``min_effect``.
    significant : bool
        ``adjusted_pvalue <= alpha``.
    drifted : bool
        Significant and (when ``min_effect`` is set) ``effect >= min_effect``.
    negligible : bool
        Significant but with ``effect`` below ``min_effect``.

    References
    ----------
    Fisher, R. A. (1935). The logic of inductive inference. JRSS 98, 39-82. Agresti, A. (2013).
    Categorical Data Analysis, 3rd ed., Wiley, sections 3.5 (Fisher's exact test) and 2.4
    (comparing two proportions).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0], [np.nan], [3.0], [4.0]] * 50)
    >>> Y = np.array([[1.0], [np.nan], [np.nan], [4.0]] * 50)
    >>> t = ks_test(X, Y, random_state=0).features[0].missingness
    >>> t.fraction_source, t.fraction_target, t.test, t.drifted
    (0.25, 0.5, 'chi2', True)
    """

    fraction_source: float
    fraction_target: float
    n_missing_source: int
    n_missing_target: int
    test: Literal["chi2", "fisher", "none"]
    statistic: float
    pvalue: float
    adjusted_pvalue: float
    effect: float
    significant: bool
    drifted: bool
    negligible: bool


@dataclass(frozen=True, slots=True)
class FeatureDrift(ResultMixin):
    """The drift test of one feature.

    Attributes
    ----------
    name : str
        Column name.
    kind : {"numeric", "categorical"}
    test : {"ks", "chi2"}
    statistic : float
        KS distance D (``ks``) or Pearson's χ² (``chi2``).
    pvalue : float
        Unadjusted p-value.
    adjusted_pvalue : float
        After the multiple-testing correction.
    effect : float
        The primary effect size (KS distance; Cramér's V for categorical), compared with
        ``min_effect``.
    effect_ci : tuple of float
        Its confidence interval.
    effects : dict
        All effect sizes: ``{"ks": ..., "wasserstein": ..., "wasserstein_std": ..., "psi": ...}``
        or ``{"cramers_v": ..., "psi": ...}``.
    effect_cis : dict
        Confidence interval ``(low, high)`` of each effect size.
    significant : bool
        ``adjusted_pvalue <= alpha`` (of the distribution test).
    drifted : bool
        The column drifted for either cause: its distribution test is significant and (when
        ``min_effect`` is set) ``effect >= min_effect``, or its missing rate changed
        (``missingness.drifted``).
    negligible : bool
        The distribution test is significant but with an effect below ``min_effect``.
    n_source, n_target : int
        Values the distribution test used: the rows, less the missing values (except for a
        categorical column with ``missing="category"``, where missing is a category).
    missingness : MissingnessTest or None
        The column's missing fractions and the test of their change; ``None`` when the column
        has no missing value in either sample.
    statistic_error : float
        How far ``statistic`` may lie from the exact statistic on the same data: 0 where it is
        exact (in memory, and every χ²); on Dask the KS distance comes from two KLL sketches
        and this is the sum of their normalized rank errors (the p-value is then computed at
        ``max(0, statistic - statistic_error)``, so it is conservative).
    """

    name: str
    kind: Literal["numeric", "categorical"]
    test: Literal["ks", "chi2"]
    statistic: float
    pvalue: float
    adjusted_pvalue: float
    effect: float
    effect_ci: tuple[float, float]
    effects: dict[str, float]
    effect_cis: dict[str, tuple[float, float]]
    significant: bool
    drifted: bool
    negligible: bool
    n_source: int
    n_target: int
    missingness: MissingnessTest | None = None
    statistic_error: float = 0.0

    @property
    def distribution_drifted(self) -> bool:
        """The distribution of the observed values drifted (whatever the missing rate did)."""
        return self.significant and not self.negligible

    @property
    def missingness_drifted(self) -> bool:
        """The missing rate changed (``False`` when not tested)."""
        return self.missingness is not None and self.missingness.drifted


@dataclass(frozen=True, slots=True)
class FeatureTestResult(ResultMixin):
    """Per-feature drift tests and the overall decision.

    Attributes
    ----------
    statistic : float
        The largest primary effect size over features (KS distance or Cramér's V).
    pvalue : float
        The overall p-value: the smallest adjusted p-value over the distribution and
        missingness tests (for Bonferroni and Holm this is a valid test of "no feature
        drifted"; for ``fdr_bh`` it is Simes' test).
    method : str
        ``"ks"``, ``"chi2"`` or ``"ks+chi2"``.
    correction : str
    alpha : float
    min_effect : float or None
    drift_detected : bool
        At least one feature ``drifted``.
    features : tuple of FeatureDrift
        One record per column, in the input's column order.
    n_drifted : int
    confidence : float
        Level of the effect-size intervals.
    missing : {"test", "drop", "category", "raise"}
        How missing values were handled.
    engine : {"in-memory", "dask"}
        Where the statistics were computed; with ``"dask"`` see each feature's
        ``statistic_error``.
    """

    statistic: float
    pvalue: float
    method: str
    correction: str
    alpha: float
    min_effect: float | None
    drift_detected: bool
    features: tuple[FeatureDrift, ...]
    n_drifted: int
    confidence: float
    missing: str = "test"
    engine: str = "in-memory"

    @property
    def has_missing(self) -> bool:
        """Some column has a missing value in X or Y."""
        return any(f.missingness is not None for f in self.features)

    def ranked(self) -> list[FeatureDrift]:
        """Features sorted by decreasing effect size (then increasing p-value)."""
        return sorted(
            self.features,
            key=lambda f: (-(f.effect if math.isfinite(f.effect) else -1.0), f.adjusted_pvalue),
        )


def adjust_pvalues(pvalues: Any, correction: Correction = "holm") -> npt.NDArray[np.float64]:
    """Adjust p-values for multiple testing.

    .. math::

        p^{\\text{Bonf}}_i = \\min(1, k p_i), \\quad
        p^{\\text{Holm}}_{(i)} = \\max_{j \\le i} \\min(1, (k - j + 1) p_{(j)}), \\quad
        p^{\\text{BH}}_{(i)} = \\min_{j \\ge i} \\min(1, k p_{(j)} / j).

    NaN p-values stay NaN and do not count in ``k``.

    References
    ----------
    Holm, S. (1979). Scand. J. Statist. 6, 65-70. Benjamini, Y., Hochberg, Y. (1995).
    JRSS B 57, 289-300.

    Examples
    --------
    >>> adjust_pvalues([0.01, 0.04, 0.03], "holm").round(3).tolist()
    [0.03, 0.06, 0.06]
    >>> adjust_pvalues([0.01, 0.04, 0.03], "fdr_bh").round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    check_choice(correction, _CORRECTIONS, name="correction")
    try:
        p = np.asarray(pvalues, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InvalidParameterError(
            f"pvalues must be a 1-D sequence of numbers in [0, 1], got {str(pvalues)[:60]!r}; "
            "pass a list or array of p-values (NaN for a test that did not run)"
        ) from err
    if p.ndim != 1:
        raise InvalidParameterError(
            f"pvalues must be 1-D, got shape {p.shape}; pass a flat list or array of p-values"
        )
    outside = ~np.isnan(p) & ~((p >= 0.0) & (p <= 1.0))
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise InvalidParameterError(
            f"pvalues must lie in [0, 1] (or be NaN for a test that did not run), got {p[i]} "
            f"at position {i}; pass p-values, not statistics or log p-values"
        )
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    q = p[ok]
    k = q.size
    if k == 0:
        return out
    if correction == "none":
        adj = q.copy()
    elif correction == "bonferroni":
        adj = np.minimum(1.0, k * q)
    elif correction == "holm":
        order = np.argsort(q, kind="stable")
        steps = np.minimum(1.0, (k - np.arange(k)) * q[order])
        adj = np.empty_like(q)
        adj[order] = np.maximum.accumulate(steps)
    else:
        order = np.argsort(q, kind="stable")
        steps = k * q[order] / np.arange(1, k + 1)
        adj = np.empty_like(q)
        adj[order] = np.minimum(1.0, np.minimum.accumulate(steps[::-1])[::-1])
    out[ok] = adj
    return out


# --------------------------------------------------------------------------------------------
# numeric columns


def _numeric_column(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    rng: np.random.Generator,
    n_bootstrap: int,
    confidence: float,
) -> tuple[float, float, dict[str, float], dict[str, tuple[float, float]]]:
    m, n = x.size, y.size
    xs = np.sort(x)
    ys = np.sort(y)
    # merge the two sorted samples: a stable sort of two sorted runs is one O(m + n) merge
    # (timsort), and puts each y after the x's not above it
    both = np.concatenate((xs, ys))
    merged = np.argsort(both, kind="stable")
    pooled = both[merged]
    from_x = merged < m
    count_x = np.cumsum(from_x)
    # the two empirical CDFs just after each distinct pooled value
    last = np.empty(m + n, dtype=bool)
    np.not_equal(pooled[1:], pooled[:-1], out=last[:-1])
    last[-1] = True
    cx_all = count_x[last]
    values = pooled[last]
    diff = np.abs(cx_all / m - (np.flatnonzero(last) + 1 - cx_all) / n)
    d = float(diff.max())
    pvalue = smallest_pvalue(_ks_2samp(xs, ys, statistic=d).pvalue)
    w1 = float(np.dot(diff[:-1], np.diff(values)))
    scale = float(np.std(xs))
    w1_std = w1 / scale if scale > 0 else (0.0 if w1 == 0 else float("inf"))
    # PSI on deciles of the source
    edges = np.unique(_sorted_quantiles(xs, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
    cx = np.diff(np.concatenate(([0], np.searchsorted(xs, edges, side="right"), [m])))
    cy = np.diff(np.concatenate(([0], np.searchsorted(ys, edges, side="right"), [n])))
    psi = float(_psi(cx / m, cy / n))
    # confidence intervals
    level = 1.0 - confidence
    eps = math.sqrt(math.log(4.0 / level) / (2 * m)) + math.sqrt(math.log(4.0 / level) / (2 * n))
    cis: dict[str, tuple[float, float]] = {"ks": (max(0.0, d - eps), min(1.0, d + eps))}
    if n_bootstrap > 0:
        psi_b = _psi(
            _resample_counts(rng, m, cx / m, n_bootstrap) / m,
            _resample_counts(rng, n, cy / n, n_bootstrap) / n,
        )
        cis["psi"] = _shifted_interval(psi_b, psi, psi, level)
        # Wasserstein on pooled-quantile bins: resample bin counts, shift to the exact value
        pos = np.round(np.linspace(0, pooled.size - 1, BOOTSTRAP_BINS + 1)).astype(np.int64)
        grid = np.unique(pooled[pos])
        if grid.size >= 2:
            gx = np.diff(np.searchsorted(xs, grid, side="right"))
            gy = np.diff(np.searchsorted(ys, grid, side="right"))
            gx[0] += np.searchsorted(xs, grid[0], side="right")
            gy[0] += np.searchsorted(ys, grid[0], side="right")
            widths = np.diff(grid)
            bx = _resample_counts(rng, m, gx / gx.sum(), n_bootstrap).cumsum(1) / m
            by = _resample_counts(rng, n, gy / gy.sum(), n_bootstrap).cumsum(1) / n
            w_b = np.abs(bx - by)[:, :-1] @ widths[:-1] if widths.size > 1 else np.zeros(1)
            w_hat = float(np.abs(gx.cumsum() / m - gy.cumsum() / n)[:-1] @ widths[:-1])
            lo, hi = _shifted_interval(np.asarray(w_b), w_hat, w1, level)
            cis["wasserstein"] = (lo, hi)
            cis["wasserstein_std"] = (
                (lo / scale, hi / scale) if scale > 0 else (float("nan"), float("nan"))
            )
        else:
            cis["wasserstein"] = (0.0, 0.0)
            cis["wasserstein_std"] = (0.0, 0.0)
    else:
        nan2 = (float("nan"), float("nan"))
        cis.update({"psi": nan2, "wasserstein": nan2, "wasserstein_std": nan2})
    effects = {"ks": d, "wasserstein": w1, "wasserstein_std": w1_std, "psi": psi}
    return d, pvalue, effects, cis


def _resample_counts(
    rng: np.random.Generator, total: int, probs: npt.NDArray[np.float64], size: int
) -> npt.NDArray[np.float64]:
    """Bootstrap bin counts: multinomial draws, or their normal approximation for large counts.

    With at least ``NORMAL_BOOTSTRAP_MIN`` rows per bin on average, the counts are drawn from
    the normal law with the multinomial's mean ``N p`` and covariance ``N (diag p - p pᵀ)``
    (100 times cheaper than exact multinomial draws for hundreds of bins).
    """
    probs = np.clip(probs, 0.0, None)
    probs = probs / probs.sum()
    if total < NORMAL_BOOTSTRAP_MIN * probs.size:
        return rng.multinomial(total, probs, size=size).astype(np.float64)
    g = rng.standard_normal((size, probs.size)) * np.sqrt(probs)
    dev = g - probs * g.sum(1, keepdims=True)
    return np.asarray(total * probs + math.sqrt(total) * dev, dtype=np.float64)


def _sorted_quantiles(
    xs: npt.NDArray[np.float64], q: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """``np.quantile(xs, q)`` (linear interpolation) for an already sorted ``xs``."""
    pos = q * (xs.size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, xs.size - 1)
    frac = pos - lo
    return np.asarray(xs[lo] * (1 - frac) + xs[hi] * frac, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class _KSResult:
    """Statistic and p-value of a two-sample KS test (what the callers read of scipy's result)."""

    statistic: float
    pvalue: float


def _ks_2samp(
    xs: npt.NDArray[np.float64], ys: npt.NDArray[np.float64], statistic: float | None = None
) -> _KSResult:
    """Two-sided two-sample KS test on sorted 1-D arrays, exact up to ``KS_EXACT_MAX_N`` per side.

    As :func:`scipy.stats.ks_2samp` with ``method="auto"``, except where scipy's exact recursion
    rounds a probability to just above 1 (for instance ``D = 1/n`` with ``n = m = 5``, where the
    exact p-value is 1): scipy then warns "Exact calculation unsuccessful" and switches to the
    asymptotic law, which is far from exact there. Here that rounding is clipped to 1. Where the
    recursion over- or underflows, the asymptotic Kolmogorov law is used, as scipy does.
    ``statistic`` is D where the caller has it already.
    """
    m, n = xs.size, ys.size
    d = _ks_statistic_sorted(xs, ys) if statistic is None else statistic
    if max(m, n) <= KS_EXACT_MAX_N:
        attempt = getattr(stats._stats_py, "_attempt_exact_2kssamp", None)
        if attempt is None:  # a scipy without the private helper: its public test
            res = stats.ks_2samp(xs, ys, method="auto")
            return _KSResult(float(res.statistic), float(res.pvalue))
        ok, _, prob = attempt(m, n, math.gcd(m, n), d, "two-sided")
        if ok:
            return _KSResult(d, float(prob))
        if np.isfinite(prob) and 1.0 < prob <= 1.0 + _KS_ROUNDING:
            return _KSResult(d, 1.0)
    return _KSResult(d, kolmogorov_sf(d, round(m * n / (m + n))))


#: Above this many observations scipy's one-sided Smirnov law (``scipy.special.smirnov``) is
#: its own asymptotic series and fast; up to it, scipy sums the exact series term by term.
_SMIRNOV_SERIES_MAX_N = 1_000_000


def kolmogorov_sf(d: float, n: int) -> float:
    """P(D_n >= d) for the two-sided Kolmogorov statistic: ``scipy.stats.kstwo.sf``, faster.

    The same law and the same branches as scipy's (Simard and L'Ecuyer 2011): in the tail
    that decides drift, :math:`n d^2 \\ge 2.2` (or :math:`d \\ge 1/2`) with
    :math:`140 < n \\le 10^6`, scipy takes Miller's :math:`2\\,P(D_n^+ \\ge d)` and sums the
    exact Birnbaum-Tingey series for the one-sided law one term at a time in C (about 1.5 s per
    p-value at :math:`n = 10^6`, 0.3 s at :math:`1.8 \\times 10^5`: most of a per-feature test
    on large tables). Here the same series is summed vectorized in log space
    (:func:`_smirnov_logsf`): equal to scipy's value within :math:`10^{-8}` relative, 8-20 times
    faster. Elsewhere scipy's own value is returned.

    .. math:: P(D_n^+ \\ge d) = d \\sum_{j=0}^{\\lfloor n(1-d) \\rfloor} \\binom{n}{j}
              \\Big(1 - d - \\frac{j}{n}\\Big)^{n-j} \\Big(d + \\frac{j}{n}\\Big)^{j-1}

    References
    ----------
    Birnbaum, Z. W., Tingey, F. H. (1951). One-sided confidence contours for probability
    distribution functions. Ann. Math. Statist. 22(4). Miller, L. H. (1956). Table of
    percentage points of Kolmogorov statistics. JASA 51. Simard, R., L'Ecuyer, P. (2011).
    Computing the two-sided Kolmogorov-Smirnov distribution. J. Stat. Softw. 39(11).

    Examples
    --------
    >>> from scipy import stats
    >>> p = kolmogorov_sf(0.005, 178_000)
    >>> bool(abs(p - stats.kstwo.sf(0.005, 178_000)) < 1e-8 * p), f"{p:.4g}"
    (True, '0.0002719')
    """
    t = n * d
    in_series = 140 < n <= _SMIRNOV_SERIES_MAX_N and 1.0 < t < n - 1
    if in_series and (d >= 0.5 or 2.2 <= t * d < 370.0):
        return float(min(1.0, 2.0 * math.exp(_smirnov_logsf(n, d))))
    return float(stats.kstwo.sf(d, n))


def _smirnov_logsf(n: int, d: float) -> float:
    """log P(D_n^+ >= d), the Birnbaum-Tingey series (:func:`kolmogorov_sf`) in log space.

    Every term is positive, so the log-sum-exp of the terms' logarithms loses no precision.
    """
    from scipy.special import gammaln, logsumexp

    j = np.arange(math.floor(n * (1.0 - d)) + 1, dtype=np.float64)
    # the last j has 1 - d - j/n = 0 in exact arithmetic at most, which rounding can take
    # just below 0: clipped, its term is 0 (log 0 = -inf), as it is exactly
    rest = np.clip(1.0 - d - j / n, 0.0, None)
    with np.errstate(divide="ignore"):
        terms = (
            gammaln(n + 1.0)
            - gammaln(j + 1.0)
            - gammaln(n - j + 1.0)
            + (n - j) * np.log(rest)
            + (j - 1.0) * np.log(d + j / n)
        )
    return math.log(d) + float(logsumexp(terms))


def _ks_statistic_sorted(xs: npt.NDArray[np.float64], ys: npt.NDArray[np.float64]) -> float:
    """sup |F_x - F_y| of two sorted samples, from both empirical CDFs at every pooled value."""
    pooled = np.concatenate((xs, ys))
    cdf_x = np.searchsorted(xs, pooled, side="right") / xs.size
    cdf_y = np.searchsorted(ys, pooled, side="right") / ys.size
    return float(np.max(np.abs(cdf_x - cdf_y)))


#: How far above 1 an exact KS probability may round before it is no longer read as 1.
_KS_ROUNDING = 1e-9


def _psi(p: npt.NDArray[np.float64], q: npt.NDArray[np.float64]) -> Any:
    p = np.clip(p, _PSI_EPS, None)
    q = np.clip(q, _PSI_EPS, None)
    return np.sum((q - p) * np.log(q / p), axis=-1)


def _shifted_interval(
    boot: npt.NDArray[np.float64], boot_center: float, exact: float, level: float
) -> tuple[float, float]:
    """Basic bootstrap interval around ``exact``, clipped at 0 and containing ``exact``.

    The replicates are first moved by ``exact - boot_center`` (the binned bootstrap's own
    point estimate), then reflected, which removes the upward bias of a distance:
    ``(2θ - q_hi, 2θ - q_lo)``.
    """
    q_lo, q_hi = np.quantile(boot + (exact - boot_center), [level / 2, 1 - level / 2])
    lo = max(0.0, 2.0 * exact - float(q_hi))
    hi = max(exact, 2.0 * exact - float(q_lo))
    return (min(lo, exact), hi)


# --------------------------------------------------------------------------------------------
# categorical columns


def _categorical_column(
    x: npt.NDArray[Any],
    y: npt.NDArray[Any],
    rng: np.random.Generator,
    n_bootstrap: int,
    confidence: float,
) -> tuple[float, float, dict[str, float], dict[str, tuple[float, float]]]:
    m = x.size
    cats, codes = np.unique(np.concatenate((x, y)).astype(str), return_inverse=True)
    cx = np.bincount(codes[:m], minlength=cats.size).astype(np.float64)
    cy = np.bincount(codes[m:], minlength=cats.size).astype(np.float64)
    return _categorical_counts(cx, cy, rng, n_bootstrap, confidence)


def _categorical_counts(
    cx: npt.NDArray[np.float64],
    cy: npt.NDArray[np.float64],
    rng: np.random.Generator,
    n_bootstrap: int,
    confidence: float,
) -> tuple[float, float, dict[str, float], dict[str, tuple[float, float]]]:
    """The χ² test and effects from the counts per category (sorted as text) in X and Y."""
    m, n = int(cx.sum()), int(cy.sum())
    N = m + n
    cx, cy = merge_rare(cx, cy)
    level = 1.0 - confidence
    if cx.size < 2:
        effects = {"cramers_v": 0.0, "psi": 0.0}
        return 0.0, 1.0, effects, {"cramers_v": (0.0, 0.0), "psi": (0.0, 0.0)}
    chi2, pvalue = _chi2(cx, cy)
    v = math.sqrt(chi2 / N)
    psi = float(_psi(cx / m, cy / n))
    if n_bootstrap > 0:
        bx = rng.multinomial(m, cx / m, size=n_bootstrap).astype(np.float64)
        by = rng.multinomial(n, cy / n, size=n_bootstrap).astype(np.float64)
        tot = bx + by
        exp_x = tot * (m / N)
        exp_y = tot * (n / N)
        with np.errstate(divide="ignore", invalid="ignore"):
            chi_b = np.nansum((bx - exp_x) ** 2 / exp_x + (by - exp_y) ** 2 / exp_y, axis=1)
        v_b = np.sqrt(chi_b / N)
        cis = {
            "cramers_v": _shifted_interval(v_b, v, v, level),
            "psi": _shifted_interval(_psi(bx / m, by / n), psi, psi, level),
        }
    else:
        nan2 = (float("nan"), float("nan"))
        cis = {"cramers_v": nan2, "psi": nan2}
    return chi2, smallest_pvalue(pvalue), {"cramers_v": v, "psi": psi}, cis


def merge_rare(
    cx: npt.NDArray[np.float64], cy: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Merge the categories whose expected count in the smaller sample is below 5 into one.

    Empty categories disappear; if only one category is left the table has one column.
    """
    m, n = cx.sum(), cy.sum()
    total = cx + cy
    rare = total * min(m, n) / (m + n) < MIN_EXPECTED
    if rare.any() and (~rare).any():
        cx = np.append(cx[~rare], cx[rare].sum())
        cy = np.append(cy[~rare], cy[rare].sum())
    elif rare.all():
        cx, cy = np.array([cx.sum()]), np.array([cy.sum()])
    keep = (cx + cy) > 0
    return cx[keep], cy[keep]


def _chi2(cx: npt.NDArray[np.float64], cy: npt.NDArray[np.float64]) -> tuple[float, float]:
    """Pearson's χ² on the 2 x k table (no continuity correction)."""
    table = np.vstack((cx, cy))
    res = stats.chi2_contingency(table, correction=False)
    return float(res.statistic), float(res.pvalue)


# --------------------------------------------------------------------------------------------
# the public functions


def missing_rate_pvalues(
    n_missing_x: npt.ArrayLike, m: int, n_missing_y: npt.ArrayLike, n: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Test of equal missing rates for many columns at once: ``(chi2, pvalue, used_fisher)``.

    Pearson's χ² on each 2 x 2 table ``[[a, m - a], [c, n - c]]`` (vectorized); where the
    smallest expected count ``min(m, n) min(a + c, N - a - c) / N`` is below 5, the p-value is
    Fisher's exact two-sided one instead. A table with no missing (or no observed) value in
    either sample has χ² = 0 and p = 1.

    Examples
    --------
    >>> chi2, p, fisher = missing_rate_pvalues([50, 2], 1000, [150, 3], 1000)
    >>> bool(p[0] < 1e-10), fisher.tolist()
    (True, [False, True])
    """
    a = np.asarray(n_missing_x, dtype=np.float64)
    c = np.asarray(n_missing_y, dtype=np.float64)
    total = m + n
    miss = a + c
    obs = total - miss
    degenerate = (miss == 0) | (obs == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = total * (a * (n - c) - (m - a) * c) ** 2 / (float(m) * n * miss * obs)
    chi2 = np.where(degenerate, 0.0, chi2)
    pvalue = np.asarray(stats.chi2.sf(chi2, 1), dtype=np.float64)
    fisher = ~degenerate & (min(m, n) * np.minimum(miss, obs) / total < MIN_EXPECTED)
    for i in np.flatnonzero(fisher):
        table = np.array([[a[i], m - a[i]], [c[i], n - c[i]]], dtype=np.int64)
        pvalue[i] = float(stats.fisher_exact(table).pvalue)
    pvalue = smallest_pvalues(pvalue)
    return chi2, pvalue, fisher


def _missing_error(count: int, name: str, column: str) -> DataValidationError:
    return DataValidationError(
        f"column {column!r} of {name} holds {count} missing value(s) (NaN, None or NA) and "
        "missing='raise' was asked for; pass missing='test' (test the observed values and the "
        "missing rate; --missing test on the command line) or missing='drop', or impute them "
        "first"
    )


def _numeric_values(
    s: pd.Series, name: str, column: str, missing: str
) -> tuple[npt.NDArray[np.float64], int]:
    """The column's observed values as floats and the number of missing ones."""
    if is_categorical(s) and not pd.api.types.is_bool_dtype(s.dtype):
        try:
            vals = pd.to_numeric(s, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as err:
            raise DataValidationError(
                f"column {column!r} of {name} holds text ({s.iloc[0]!r}, ...) where numbers are "
                "expected; encode it, or test it as categorical with chi2_test/feature_test"
            ) from err
    else:
        vals = s.to_numpy(dtype=np.float64, na_value=np.nan)
    nan = np.isnan(vals)
    n_missing = int(np.count_nonzero(nan))
    n_inf = int(np.count_nonzero(np.isinf(vals)))
    if n_inf:
        raise infinite_values_error(n_inf, name, column)
    if n_missing and missing == "raise":
        raise _missing_error(n_missing, name, column)
    return (vals[~nan] if n_missing else vals), n_missing


def _categorical_values(
    s: pd.Series, name: str, column: str, missing: str
) -> tuple[npt.NDArray[Any], int]:
    """The column's values as text (missing ones left out, or as a category) and their count."""
    na = np.asarray(s.isna().to_numpy(), dtype=bool)
    n_missing = int(np.count_nonzero(na))
    if not n_missing:
        return np.asarray(s.astype(str).to_numpy()), 0
    if missing == "raise":
        raise _missing_error(n_missing, name, column)
    if missing == "category":
        text = np.asarray(s.astype(str).to_numpy(), dtype=object)
        text[na] = MISSING_CATEGORY
        return text, n_missing
    return np.asarray(s[~na].astype(str).to_numpy()), n_missing


_Column = tuple[str, str, float, float, dict[str, float], dict[str, tuple[float, float]]]
#: Rows x columns above which columns are tested on several threads (NumPy's sorts release the
#: GIL); below it one thread is faster.
PARALLEL_WORK = 2_000_000


def _job(
    col: str,
    kind: str,
    fn: Callable[..., Any],
    xv: npt.NDArray[Any],
    yv: npt.NDArray[Any],
    seed: int,
    n_bootstrap: int,
    confidence: float,
    small: bool,
) -> Callable[[], _Column]:
    def run() -> _Column:
        if small:
            return (col, kind, math.nan, math.nan, {}, {})
        rng = np.random.default_rng(seed)
        stat, p, eff, cis = fn(xv, yv, rng, n_bootstrap, confidence)
        return (col, kind, stat, p, eff, cis)

    return run


def _run_jobs(jobs: list[Callable[[], _Column]], *, work: float) -> list[_Column]:
    workers = min(len(jobs), os.cpu_count() or 1)
    if work < PARALLEL_WORK or workers < 2:
        return [job() for job in jobs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: job(), jobs))


def _check_options(
    correction: Any,
    missing: Any,
    alpha: Any,
    confidence: Any,
    n_bootstrap: Any,
    min_effect: Any,
) -> tuple[float, int]:
    """Check the options shared by the in-memory and Dask paths: ``(alpha, n_bootstrap)``."""
    check_choice(correction, _CORRECTIONS, name="correction")
    check_choice(missing, _MISSING_POLICIES, name="missing")
    alpha_f = check_alpha(alpha)
    if not (isinstance(confidence, float | int) and 0.0 < float(confidence) < 1.0):
        raise InvalidParameterError(f"confidence must lie in (0, 1), got {confidence!r}")
    n_boot = check_int(n_bootstrap, name="n_bootstrap", minimum=0)
    if min_effect is not None and (
        isinstance(min_effect, bool)
        or not isinstance(min_effect, int | float)
        or not 0.0 <= float(min_effect) <= 1.0
    ):
        raise InvalidParameterError(
            f"min_effect must be a number in [0, 1] (a KS distance or Cramér's V), got "
            f"{min_effect!r}"
        )
    return alpha_f, n_boot


def _rate_tested(n_miss: npt.NDArray[np.int64], missing: str, kind: str) -> bool:
    """Whether a column's missing rate is tested: it has missing values and the policy asks."""
    return bool(n_miss.any()) and (
        missing == "test" or (missing == "category" and kind == "numeric")
    )


def _warn_thin(thin: list[str], names: tuple[str, str]) -> None:
    """Warn about the columns with fewer than 2 observed values in a table (if any)."""
    if thin:
        warn_small(
            f"column(s) {', '.join(thin[:5])} have fewer than 2 observed (non-missing) values in "
            f"{names[0]} or {names[1]}; their distribution test is NaN (the test of their "
            "missing rate still runs)"
        )


def _run(
    X: Any,
    Y: Any,
    *,
    kinds: str | Sequence[str] | None,
    correction: Any,
    alpha: Any,
    min_effect: float | None,
    confidence: float,
    n_bootstrap: int,
    random_state: Any,
    missing: Any = "test",
    names: tuple[str, str] = ("X", "Y"),
) -> FeatureTestResult:
    alpha_f, n_bootstrap = _check_options(
        correction, missing, alpha, confidence, n_bootstrap, min_effect
    )
    rng = check_random_state(random_state)
    fx, fy = aligned_frames(X, Y, names=names)
    for nm, f in zip(names, (fx, fy), strict=True):
        if f.shape[0] == 0:
            raise DataValidationError(f"{nm} has 0 rows; pass at least 1 row per sample")
    m, n = fx.shape[0], fy.shape[0]
    cols = [str(c) for c in fx.columns]
    if isinstance(kinds, str):
        kind_list = [kinds] * len(cols)
    elif kinds is None:
        kind_list = [
            "categorical"
            if is_categorical(fx.iloc[:, j]) or is_categorical(fy.iloc[:, j])
            else "numeric"
            for j in range(len(cols))
        ]
    else:
        kind_list = list(kinds)
    small = min(m, n) < 2
    # one generator per column, so the answer does not depend on the order columns finish in
    seeds = rng.integers(0, 2**63 - 1, size=len(cols))
    jobs: list[Callable[[], _Column]] = []
    n_miss = np.zeros((len(cols), 2), dtype=np.int64)
    n_used = np.zeros((len(cols), 2), dtype=np.int64)
    rate_tested = np.zeros(len(cols), dtype=bool)
    thin: list[str] = []
    for j, col in enumerate(cols):
        if kind_list[j] == "numeric":
            xv, n_miss[j, 0] = _numeric_values(fx.iloc[:, j], names[0], col, missing)
            yv, n_miss[j, 1] = _numeric_values(fy.iloc[:, j], names[1], col, missing)
            fn: Callable[..., Any] = _numeric_column
            kind = "numeric"
        else:
            xv, n_miss[j, 0] = _categorical_values(fx.iloc[:, j], names[0], col, missing)
            yv, n_miss[j, 1] = _categorical_values(fy.iloc[:, j], names[1], col, missing)
            fn = _categorical_column
            kind = "categorical"
        n_used[j] = (xv.size, yv.size)
        rate_tested[j] = _rate_tested(n_miss[j], missing, kind)
        col_small = small or min(xv.size, yv.size) < 2
        if col_small and not small:
            thin.append(f"{col!r} ({xv.size} and {yv.size})")
        jobs.append(
            _job(col, kind, fn, xv, yv, int(seeds[j]), n_bootstrap, float(confidence), col_small)
        )
    raw = _run_jobs(jobs, work=float(m + n) * len(cols))
    if small:
        warn_small(
            f"per-feature tests need at least 2 rows per sample, got {m} and {n}; the result is NaN"
        )
    _warn_thin(thin, names)
    return _assemble(raw, n_miss, n_used, rate_tested, m, n, alpha_f, correction, min_effect,
                     float(confidence), str(missing))  # fmt: skip


def _assemble(
    raw: list[_Column],
    n_miss: npt.NDArray[np.int64],
    n_used: npt.NDArray[np.int64],
    rate_tested: npt.NDArray[np.bool_],
    m: int,
    n: int,
    alpha_f: float,
    correction: Any,
    min_effect: float | None,
    confidence: float,
    missing: str,
    *,
    errors: Sequence[float] | None = None,
    engine: str = "in-memory",
) -> FeatureTestResult:
    """The result from each column's test, missing counts and sizes (one correction for all)."""
    cols = [r[0] for r in raw]
    chi2_miss = np.full(len(cols), np.nan)
    p_miss = np.full(len(cols), np.nan)
    fisher = np.zeros(len(cols), dtype=bool)
    chi2_miss[rate_tested], p_miss[rate_tested], fisher[rate_tested] = missing_rate_pvalues(
        n_miss[rate_tested, 0], m, n_miss[rate_tested, 1], n
    )
    # one family: the d distribution tests, then the missing-rate tests of the columns that have
    # missing values (a column without any has p = 1 and would only dilute the correction)
    family = np.concatenate(([r[3] for r in raw], p_miss[rate_tested]))
    adjusted_all = adjust_pvalues(family, correction)
    adjusted = adjusted_all[: len(cols)]
    adjusted_miss = np.full(len(cols), np.nan)
    adjusted_miss[rate_tested] = adjusted_all[len(cols) :]
    features = []
    for j, ((col, kind, stat, p, eff, cis), padj) in enumerate(zip(raw, adjusted, strict=True)):
        primary = "ks" if kind == "numeric" else "cramers_v"
        effect = eff.get(primary, math.nan)
        significant = bool(padj <= alpha_f)
        big = min_effect is None or effect >= float(min_effect)
        miss_record = None
        if n_miss[j].any():
            miss_record = _missingness_record(
                n_miss[j],
                m,
                n,
                tested=bool(rate_tested[j]),
                statistic=float(chi2_miss[j]),
                pvalue=float(p_miss[j]),
                adjusted=float(adjusted_miss[j]),
                fisher=bool(fisher[j]),
                alpha=alpha_f,
                min_effect=min_effect,
            )
        drifted = significant and big
        features.append(
            FeatureDrift(
                name=col,
                kind="numeric" if kind == "numeric" else "categorical",
                test="ks" if kind == "numeric" else "chi2",
                statistic=stat,
                pvalue=p,
                adjusted_pvalue=float(padj),
                effect=effect,
                effect_ci=cis.get(primary, (math.nan, math.nan)),
                effects=eff,
                effect_cis=cis,
                significant=significant,
                drifted=drifted or (miss_record is not None and miss_record.drifted),
                negligible=significant and not big,
                n_source=int(n_used[j, 0]),
                n_target=int(n_used[j, 1]),
                missingness=miss_record,
                statistic_error=0.0 if errors is None else float(errors[j]),
            )
        )
    tests = sorted({f.test for f in features})
    finite = adjusted_all[np.isfinite(adjusted_all)]
    effects = [f.effect for f in features if math.isfinite(f.effect)]
    n_drifted = sum(f.drifted for f in features)
    return FeatureTestResult(
        statistic=max(effects) if effects else math.nan,
        pvalue=float(finite.min()) if finite.size else math.nan,
        method="+".join(tests),
        correction=str(correction),
        alpha=alpha_f,
        min_effect=None if min_effect is None else float(min_effect),
        drift_detected=n_drifted > 0,
        features=tuple(features),
        n_drifted=n_drifted,
        confidence=float(confidence),
        missing=str(missing),
        engine=engine,
    )


def _missingness_record(
    counts: npt.NDArray[np.int64],
    m: int,
    n: int,
    *,
    tested: bool,
    statistic: float,
    pvalue: float,
    adjusted: float,
    fisher: bool,
    alpha: float,
    min_effect: float | None,
) -> MissingnessTest:
    kx, ky = int(counts[0]), int(counts[1])
    if not tested:
        nan = math.nan
        return MissingnessTest(kx / m, ky / n, kx, ky, "none", nan, nan, nan, nan, False, False,
                               False)  # fmt: skip
    effect = math.sqrt(statistic / (m + n))
    significant = bool(adjusted <= alpha)
    big = min_effect is None or effect >= float(min_effect)
    return MissingnessTest(
        fraction_source=kx / m,
        fraction_target=ky / n,
        n_missing_source=kx,
        n_missing_target=ky,
        test="fisher" if fisher else "chi2",
        statistic=statistic,
        pvalue=pvalue,
        adjusted_pvalue=adjusted,
        effect=effect,
        significant=significant,
        drifted=significant and big,
        negligible=significant and not big,
    )


def ks_test(
    X: Any,
    Y: Any,
    *,
    correction: Correction = "holm",
    alpha: float = 0.05,
    min_effect: float | None = None,
    confidence: float = 0.95,
    n_bootstrap: int = 200,
    random_state: Any = None,
    missing: MissingPolicy = "test",
    names: tuple[str, str] | None = None,
) -> FeatureTestResult:
    """Two-sample Kolmogorov-Smirnov test on every column, with effect sizes.

    H0 for column j: its distribution is the same in X and Y. The statistic is

    .. math:: D_j = \\sup_t |F_{X,j}(t) - F_{Y,j}(t)|,

    with the exact p-value up to 10,000 rows per sample and the asymptotic Kolmogorov
    distribution above (as :func:`scipy.stats.ks_2samp`). The p-values are adjusted with
    ``correction``; a column has ``drifted`` when its adjusted p-value is at most ``alpha`` and
    (when ``min_effect`` is given) ``D_j >= min_effect``.

    Effect sizes: the KS distance D with a distribution-free interval from the
    Dvoretzky-Kiefer-Wolfowitz inequality (``D ± ε_m ± ε_n``, ``ε_k = √(ln(4/a)/(2k))``);
    the Wasserstein-1 distance ``W = ∫|F_X - F_Y|``, also divided by the source standard
    deviation; and the population stability index over source deciles,
    ``PSI = Σ (q_b - p_b) ln(q_b / p_b)``. The Wasserstein and PSI intervals come from a
    multinomial bootstrap of binned counts (``n_bootstrap`` draws, 256 pooled-quantile bins), so
    they cost the same for a million rows as for a thousand.

    Parameters
    ----------
    X, Y : array-like, DataFrame or tensor of shape (m, d) and (n, d)
    correction : {"holm", "bonferroni", "fdr_bh", "none"}
    alpha : float
    min_effect : float, optional
        Smallest KS distance (in [0, 1]) that counts as drift; smaller significant changes are
        reported as ``negligible``.
    confidence : float
        Level of the intervals.
    n_bootstrap : int
        Bootstrap draws for the Wasserstein and PSI intervals (0: no intervals, NaN).
    random_state : None, int or numpy Generator
    missing : {"test", "drop", "category", "raise"}
        Missing values (NaN, None, ``pd.NA``). ``"test"`` (default): each column's test runs
        on its observed values, and the column's missing rate is tested too (see Notes).
        ``"drop"``: observed values only, no test of the rate (the fractions are still
        reported). ``"category"``: as ``"test"`` for numeric columns; a categorical column
        counts missing as one more category, ``"(missing)"``, in its χ² test.
        ``"raise"``: a :class:`~nndoctor.exceptions.DataValidationError` naming the column.
        Infinite values are not missing: they always raise.
    names : (str, str), optional
        What error messages call X and Y (default ``"X"`` and ``"Y"``); the command line passes
        ``("the source table (src.csv)", "the target table (tgt.csv)")``.

    Returns
    -------
    FeatureTestResult

    Notes
    -----
    **Missing values.** With ``missing="test"`` a column with ``a`` of ``m`` values missing in
    X and ``c`` of ``n`` in Y also gets the test of H0: equal missing rates, on the 2 x 2 table
    ``[[a, m - a], [c, n - c]]`` (:class:`MissingnessTest`: Pearson's χ² with one degree of
    freedom, Fisher's exact test when an expected count is below 5; effect size
    ``φ = √(χ²/N)``). Its p-value joins the family of the distribution tests, so one
    correction covers ``d + k`` hypotheses (``k`` = columns with at least one missing value;
    a column without any would have p = 1 and is left out, which keeps the clean case as it
    was, and which is valid because Fisher's test conditions on the total missing count).
    A column ``drifted`` when either of its tests rejects (after correction, and with
    ``min_effect`` applied to the KS distance, Cramér's V or φ). Under missingness
    completely at random the observed values are a random sample of the column, so the
    distribution test keeps its level; when missingness depends on the value itself, the
    observed values can differ even if the full column did not, which is a change of what
    the model is fed too. A column with fewer than 2 observed values in a sample gets a NaN
    distribution test and a :class:`~nndoctor.exceptions.SmallSampleWarning`.

    References
    ----------
    Massart, P. (1990). The tight constant in the Dvoretzky-Kiefer-Wolfowitz inequality.
    Ann. Probab. 18, 1269-1283. Rabanser, S., Günnemann, S., Lipton, Z. (2019). Failing
    loudly: an empirical study of methods for detecting dataset shift. NeurIPS.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3))
    >>> Y = rng.normal(size=(500, 3)) + [0.5, 0.0, 0.0]
    >>> res = ks_test(X, Y, random_state=0)
    >>> res.drift_detected, [f.name for f in res.features if f.drifted]
    (True, ['x0'])
    >>> round(res.features[0].effect, 3)
    0.22
    """
    if is_dask(X) or is_dask(Y):  # per-partition statistics, merged (see _dask)
        result: FeatureTestResult = dask_impl("feature_test")(
            X, Y, kinds="numeric", correction=correction, alpha=alpha, min_effect=min_effect,
            confidence=confidence, n_bootstrap=n_bootstrap, random_state=random_state,
            missing=missing, names=names)  # fmt: skip
        return result
    return _run(
        X,
        Y,
        kinds="numeric",
        correction=correction,
        alpha=alpha,
        min_effect=min_effect,
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        random_state=random_state,
        missing=missing,
        names=display_names(names),
    )


def chi2_test(
    X: Any,
    Y: Any,
    *,
    correction: Correction = "holm",
    alpha: float = 0.05,
    min_effect: float | None = None,
    confidence: float = 0.95,
    n_bootstrap: int = 200,
    random_state: Any = None,
    missing: MissingPolicy = "test",
    names: tuple[str, str] | None = None,
) -> FeatureTestResult:
    """Pearson's χ² test of homogeneity on every (categorical) column, with effect sizes.

    H0 for column j: the category frequencies are the same in X and Y. On the 2 x k table of
    counts ``O`` with expected counts ``E``:

    .. math:: \\chi^2 = \\sum (O - E)^2 / E, \\qquad V = \\sqrt{\\chi^2 / N},

    on k - 1 degrees of freedom (no continuity correction); categories whose expected count in
    the smaller sample is below 5 are merged into one. The effect size is Cramér's V (for two
    samples ``min(r, c) - 1 = 1``), with a multinomial-bootstrap interval, plus the PSI. Values
    are compared as text, so numbers work as categories too.

    Parameters
    ----------
    X, Y : array-like or DataFrame of shape (m, d) and (n, d)
    correction : {"holm", "bonferroni", "fdr_bh", "none"}
    alpha : float
    min_effect : float, optional
        Smallest Cramér's V that counts as drift.
    confidence : float
    n_bootstrap : int
        Bootstrap draws for the interval of Cramér's V (0: no interval, NaN).
    random_state : None, int or numpy Generator
    missing : {"test", "drop", "category", "raise"}
        As in :func:`ks_test`; ``"category"`` counts missing values as the category
        ``"(missing)"`` instead of testing their rate apart.
    names : (str, str), optional
        What error messages call X and Y, as in :func:`ks_test`.

    Returns
    -------
    FeatureTestResult

    References
    ----------
    Cramér, H. (1946). Mathematical Methods of Statistics. Princeton. Agresti, A. (2013).
    Categorical Data Analysis, 3rd ed. Wiley (missing rates: the 2 x 2 table, Fisher's exact
    test).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.choice(["a", "b", "c"], size=(400, 1), p=[0.5, 0.3, 0.2])
    >>> Y = rng.choice(["a", "b", "c"], size=(400, 1), p=[0.3, 0.3, 0.4])
    >>> res = chi2_test(X, Y, random_state=0)
    >>> res.drift_detected, res.pvalue < 1e-4
    (True, True)
    """
    if is_dask(X) or is_dask(Y):  # per-partition statistics, merged (see _dask)
        result: FeatureTestResult = dask_impl("feature_test")(
            X, Y, kinds="categorical", correction=correction, alpha=alpha, min_effect=min_effect,
            confidence=confidence, n_bootstrap=n_bootstrap, random_state=random_state,
            missing=missing, names=names)  # fmt: skip
        return result
    return _run(
        X,
        Y,
        kinds="categorical",
        correction=correction,
        alpha=alpha,
        min_effect=min_effect,
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        random_state=random_state,
        missing=missing,
        names=display_names(names),
    )


def feature_test(
    X: Any,
    Y: Any,
    *,
    categorical: Sequence[str] | None = None,
    correction: Correction = "holm",
    alpha: float = 0.05,
    min_effect: float | None = None,
    confidence: float = 0.95,
    n_bootstrap: int = 200,
    random_state: Any = None,
    missing: MissingPolicy = "test",
    names: tuple[str, str] | None = None,
) -> FeatureTestResult:
    """Per-feature drift tests that pick KS or χ² for each column from its dtype.

    Numeric columns get :func:`ks_test`'s KS test; categorical, object, string and boolean
    columns (or those named in ``categorical``) get :func:`chi2_test`'s χ² test. One
    multiple-testing correction covers all columns. ``min_effect`` is compared with the KS
    distance for numeric columns and with Cramér's V for categorical ones.

    .. math:: p^{\\text{adj}} = \\text{correction}(p_1, \\dots, p_d)

    Parameters
    ----------
    X, Y : DataFrame or array-like
    categorical : list of str, optional
        Column names to treat as categorical regardless of their dtype.
    correction, alpha, min_effect, confidence, n_bootstrap, random_state, missing, names
        As in :func:`ks_test` (missing values: observed values tested, and the missing rate
        tested in the same family, by default).

    Returns
    -------
    FeatureTestResult

    References
    ----------
    Rabanser, S., Günnemann, S., Lipton, Z. (2019). Failing loudly. NeurIPS.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> src = pd.DataFrame({"age": rng.normal(40, 10, 300), "city": rng.choice(["a", "b"], 300)})
    >>> tgt = pd.DataFrame({"age": rng.normal(45, 10, 300), "city": rng.choice(["a", "b"], 300)})
    >>> res = feature_test(src, tgt, random_state=0)
    >>> [(f.name, f.test, f.drifted) for f in res.features]
    [('age', 'ks', True), ('city', 'chi2', False)]

    Missing values: ``city`` goes from 5% to 20% missing, its observed values do not move.

    >>> src.loc[src.index[::20], "city"] = None
    >>> tgt.loc[tgt.index[::5], "city"] = None
    >>> f = feature_test(src, tgt, random_state=0).features[1]
    >>> f.drifted, f.distribution_drifted, f.missingness.test, f"{f.missingness.pvalue:.1e}"
    (True, False, 'chi2', '2.8e-08')
    """
    if is_dask(X) or is_dask(Y):  # per-partition statistics, merged (see _dask)
        result: FeatureTestResult = dask_impl("feature_test")(
            X, Y, kinds=None, categorical=categorical, correction=correction, alpha=alpha,
            min_effect=min_effect, confidence=confidence, n_bootstrap=n_bootstrap,
            random_state=random_state, missing=missing, names=names)  # fmt: skip
        return result
    a, b = display_names(names)
    fx = as_frame(X, a)
    fy = as_frame(Y, b)
    if isinstance(categorical, str):
        raise InvalidParameterError(
            f"categorical must be a list of column names, got the string {categorical!r}; "
            f"pass [{categorical!r}]"
        )
    cat = set(categorical or ())
    unknown = sorted(cat - {str(c) for c in fx.columns})
    if unknown:
        raise InvalidParameterError(
            f"categorical names column(s) {unknown} that {a} does not have; pass names from "
            f"{[str(c) for c in fx.columns][:10]}"
        )
    kinds = []
    for j, c in enumerate(fx.columns):
        is_cat = str(c) in cat or is_categorical(fx.iloc[:, j])
        if j < fy.shape[1]:
            is_cat = is_cat or is_categorical(fy.iloc[:, j])
        kinds.append("categorical" if is_cat else "numeric")
    return _run(
        fx,
        fy,
        kinds=kinds,
        correction=correction,
        alpha=alpha,
        min_effect=min_effect,
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        random_state=random_state,
        missing=missing,
        names=display_names(names),
    )
