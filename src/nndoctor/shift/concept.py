"""Concept shift: has P(y | x) changed? Tests that need (a few) target labels.

Concept shift — the same input now means something else — leaves the inputs untouched, so no test
on unlabeled data can see it. With a few labeled target rows three questions can be answered:

* :func:`accuracy_gap_test` — is the observed target accuracy below the accuracy predicted for
  *these* target inputs under "no concept shift", by more than the estimator's own uncertainty?
* :func:`conditional_shift_test` — does the label help a domain classifier beyond the input
  (a Wald test with a valid asymptotic p-value)?
* :func:`decompose_accuracy_drop` — how much of an accuracy drop is due to P(x) (the inputs moved
  to harder or easier regions) and how much to P(y | x) (the answers changed)?

All three take the model's class probabilities and integer labels (class ``k`` is column ``k``)
on a labeled source set that the model was **not** trained on, and on the labeled target rows.
``source_weights`` re-weight the source to the hypothesis being tested: 1 for "no shift",
importance weights β(x) for covariate shift, label weights w(y) for label shift. Under that
hypothesis and no concept shift the weighted source and the target share P(x, y), which is what
makes the tests valid.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from nndoctor._results import ResultMixin
from nndoctor._validation import (
    check_choice,
    check_int,
    check_labels,
    check_probabilities,
    check_random_state,
    check_unit_interval,
    check_weights,
)
from nndoctor.exceptions import DataValidationError, SmallSampleWarning
from nndoctor.shift._common import canonical_order, smallest_pvalue
from nndoctor.shift._logistic import fit_logistic, logit, sandwich_cov

__all__ = [
    "AccuracyDecomposition",
    "AccuracyGapResult",
    "ConditionalShiftResult",
    "accuracy_gap_test",
    "conditional_shift_test",
    "decompose_accuracy_drop",
]

FloatArray = npt.NDArray[np.float64]

MIN_TARGET_LABELS = 5
"""Fewer labeled target rows than this: the tests warn and return NaN."""
MIN_SOURCE_ROWS = 10
"""Fewer labeled source rows than this: the tests warn and return NaN."""


@dataclass(frozen=True, slots=True)
class AccuracyGapResult(ResultMixin):
    """Observed target accuracy against the accuracy predicted under "no concept shift".

    Attributes
    ----------
    observed_accuracy : float
        Accuracy on the labeled target rows.
    predicted_accuracy : float
        Accuracy predicted for the same rows from the source calibration map P(correct | conf).
    margin : float
        How far below the prediction the observed accuracy may fall before concept shift is
        flagged: :math:`z_{1-\\alpha}\\sqrt{se_{binomial}^2 + se_{estimator}^2}`.
    statistic : float
        :math:`z = (\\text{observed} - \\text{predicted}) / \\sqrt{se_{binomial}^2 +
        se_{estimator}^2}`.
    pvalue : float
        One-sided :math:`\\Phi(z)` (H1: accuracy lower than predicted).
    concept_shift_detected : bool
        ``pvalue < alpha``.
    se_binomial, se_estimator : float
        Sampling error of the observed accuracy (Poisson-binomial) and bootstrap error of the
        prediction (from refitting the calibration map on resampled source rows).
    n_target_labels, n_source : int
        Rows used.
    alpha : float
        Level of the test.
    """

    observed_accuracy: float
    predicted_accuracy: float
    margin: float
    statistic: float
    pvalue: float
    concept_shift_detected: bool
    se_binomial: float
    se_estimator: float
    n_target_labels: int
    n_source: int
    alpha: float


@dataclass(frozen=True, slots=True)
class ConditionalShiftResult(ResultMixin):
    """Does the label help a domain classifier beyond the input? (a test of P(y | x)).

    Attributes
    ----------
    statistic : float
        Robust Wald z of the label term :math:`\\gamma` in
        :math:`\\operatorname{logit} P(\\text{target} \\mid x, y) = a + b\\,
        \\operatorname{logit} c(x) + \\gamma\\, \\hat p(y \\mid x)`.
    pvalue : float
        Two-sided normal p-value of :math:`H_0: \\gamma = 0`.
    coefficient, standard_error : float
        :math:`\\hat\\gamma` and its sandwich standard error. Negative :math:`\\hat\\gamma`:
        target labels are *less* plausible to the source model than source labels are.
    concept_shift_detected : bool
        ``pvalue < alpha``.
    n_target_labels, n_source : int
        Rows used.
    alpha : float
        Level of the test.
    """

    statistic: float
    pvalue: float
    coefficient: float
    standard_error: float
    concept_shift_detected: bool
    n_target_labels: int
    n_source: int
    alpha: float


@dataclass(frozen=True, slots=True)
class AccuracyDecomposition(ResultMixin):
    """An accuracy drop split into a part due to P(x) and a part due to P(y | x).

    .. math::
        \\underbrace{acc_S - acc_T}_{\\text{total}} =
        \\underbrace{acc_S - \\widehat{acc}_T}_{P(x)} +
        \\underbrace{\\widehat{acc}_T - acc_T}_{P(y \\mid x)}

    where :math:`\\widehat{acc}_T` is the accuracy predicted on the target inputs with the
    source's P(y | x) (the calibration map fitted on the weighted source).

    Attributes
    ----------
    source_accuracy, target_accuracy, predicted_target_accuracy : float
        The three accuracies above.
    total_drop, covariate_part, concept_part : float
        The decomposition (positive: accuracy lost).
    total_ci, covariate_ci, concept_ci : tuple of float
        Bootstrap percentile intervals (level ``1 - alpha``).
    alpha : float
        One minus the interval level.
    """

    source_accuracy: float
    target_accuracy: float
    predicted_target_accuracy: float
    total_drop: float
    covariate_part: float
    concept_part: float
    total_ci: tuple[float, float]
    covariate_ci: tuple[float, float]
    concept_ci: tuple[float, float]
    alpha: float


# ----------------------------------------------------------------------------- validation


def _prepare(
    source_probs: Any,
    source_labels: Any,
    target_probs: Any,
    target_labels: Any,
    source_weights: Any,
) -> tuple[FloatArray, npt.NDArray[np.int64], FloatArray, npt.NDArray[np.int64], FloatArray]:
    ps = check_probabilities(source_probs, name="source_probs")
    pt = check_probabilities(target_probs, name="target_probs", n_classes=ps.shape[1])
    ys = _int_labels(source_labels, "source_labels", ps.shape)
    yt = _int_labels(target_labels, "target_labels", pt.shape)
    if source_weights is None:
        w = np.ones(ps.shape[0])
    else:
        w = check_weights(
            source_weights, name="source_weights", n_rows=ps.shape[0], allow_zero_sum=False
        )
        w = w * (w.shape[0] / w.sum())
    # each sample's rows in an order fixed by their content, so that the fits' sums and the
    # bootstraps, drawn from random_state by position, do not depend on the rows' order
    o_s, o_t = canonical_order(ps, ys, w), canonical_order(pt, yt)
    return ps[o_s], ys[o_s], pt[o_t], yt[o_t], w[o_s]


def _int_labels(labels: Any, name: str, shape: tuple[int, ...]) -> npt.NDArray[np.int64]:
    arr = check_labels(labels, name=name, n_rows=shape[0])
    if arr.dtype.kind not in "iuf" or (
        arr.dtype.kind == "f" and not np.all(np.equal(np.mod(arr, 1), 0))
    ):
        raise DataValidationError(
            f"{name} must be integer class indices 0..{shape[1] - 1} (column k of the "
            "probabilities is class k); encode the labels first"
        )
    out = arr.astype(np.int64)
    if out.size and (out.min() < 0 or out.max() >= shape[1]):
        raise DataValidationError(
            f"{name} holds class {int(out.max()) if out.max() >= shape[1] else int(out.min())} "
            f"but the probabilities have {shape[1]} columns; labels must lie in 0..{shape[1] - 1}"
        )
    return out


def _too_small(n_source: int, n_target: int, what: str) -> bool:
    if n_target < MIN_TARGET_LABELS or n_source < MIN_SOURCE_ROWS:
        warnings.warn(
            f"{what} needs at least {MIN_TARGET_LABELS} labeled target rows and "
            f"{MIN_SOURCE_ROWS} labeled source rows (got {n_target} and {n_source}); "
            "the result is NaN",
            SmallSampleWarning,
            stacklevel=3,
        )
        return True
    return False


def _given_design(given: str, probs: FloatArray, labels: npt.NDArray[np.int64]) -> FloatArray:
    """What the tests condition on: the model's confidence (P(y|x)) or the class (P(x|y))."""
    if given == "label":
        return np.asarray(np.eye(probs.shape[1])[labels], dtype=np.float64)
    return _confidence_design(probs)


def _confidence_design(probs: FloatArray) -> FloatArray:
    conf = probs.max(axis=1)
    return np.column_stack([np.ones(probs.shape[0]), logit(conf)])


def _calibration_fit(
    design: FloatArray, correct: FloatArray, weights: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Add two half-weight pseudo-rows (one right, one wrong) at the mean confidence.

    A Jeffreys-style prior: a source set with no error (or no success) then predicts a rate
    strictly inside (0, 1) instead of exactly 1 (or 0), so one target error cannot over-flag.
    ``correct`` and ``weights`` may be 2-D (one row per bootstrap replicate).
    """
    centre = design.mean(axis=0)
    d = np.vstack([design, centre, centre])
    pad_c = np.broadcast_to(np.array([1.0, 0.0]), (*correct.shape[:-1], 2))
    c = np.concatenate([correct, pad_c], axis=-1)
    pad_w = 0.5 * np.repeat(weights.mean(axis=-1, keepdims=True), 2, axis=-1)
    w = np.concatenate([weights, pad_w], axis=-1)
    return d, c, w


def _sigmoid(z: FloatArray) -> FloatArray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)))


# ----------------------------------------------------------------------------- tests


def accuracy_gap_test(
    source_probs: Any,
    source_labels: Any,
    target_probs: Any,
    target_labels: Any,
    *,
    source_weights: Any = None,
    given: str = "input",
    alpha: float = 0.05,
    n_bootstrap: int = 200,
    random_state: Any = None,
) -> AccuracyGapResult:
    """Test whether the observed target accuracy falls short of the no-concept-shift prediction.

    The source rows give a calibration map :math:`m(c) = P(\\text{correct} \\mid c)` of the
    model's confidence :math:`c(x) = \\max_k \\hat p(k \\mid x)` (a weighted logistic regression
    on :math:`\\operatorname{logit} c`). Without concept shift the target rows are right with
    probability :math:`m(c(x_i))`, so

    .. math::
        \\widehat{acc}_T = \\frac{1}{n}\\sum_i m(c(x_i)), \\qquad
        z = \\frac{acc_T - \\widehat{acc}_T}{\\sqrt{se_{binomial}^2 + se_{estimator}^2}},
        \\qquad se_{binomial}^2 = \\frac{1}{n^2}\\sum_i m_i (1 - m_i),

    with :math:`se_{estimator}` the bootstrap standard deviation of :math:`\\widehat{acc}_T`
    over resampled source rows. The margin from the estimator's own uncertainty keeps a
    handful of labels from over-flagging. p-value: :math:`\\Phi(z)` (one-sided).

    Parameters
    ----------
    source_probs, target_probs : array-like of shape (n, K)
        Class probabilities of the same model on labeled source rows it was not trained on and
        on the labeled target rows.
    source_labels, target_labels : array-like of shape (n,)
        Integer class indices 0..K-1.
    source_weights : array-like of shape (n_source,), optional
        Weights that make the source look like the target under the hypothesis tested
        (importance weights for covariate shift).
    given : {"input", "label"}
        ``"input"``: the map is :math:`P(\\text{correct} \\mid c(x))` — the null is an unchanged
        P(y | x) (no shift, or covariate shift with ``source_weights``). ``"label"``: the map is
        the per-class accuracy :math:`P(\\text{correct} \\mid y)` — the null is an unchanged
        P(x | y), i.e. pure label shift, and no label weights are needed because the target rows'
        own labels pick the classes.
    alpha : float
        Level; the result's ``concept_shift_detected`` is ``pvalue < alpha``.
    n_bootstrap : int
        Bootstrap replicates for :math:`se_{estimator}`.
    random_state : int, Generator or None
        Seed of the bootstrap.

    Returns
    -------
    AccuracyGapResult

    Notes
    -----
    H0: P(y | x) is the same in source and (weighted) target, so the calibration map transfers.
    H1: the target is less accurate than the map predicts. Compare the prediction-based
    accuracy estimates of Guillory et al. (2021), "Predicting with confidence on unseen
    distributions", ICCV.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> def sample(n, swap):
    ...     y = rng.integers(0, 3, n)
    ...     p = np.full((n, 3), 0.05); p[np.arange(n), y] = 0.9
    ...     flip = rng.random(n) < 0.1
    ...     y = np.where(flip, (y + 1) % 3, y)   # 90 % accurate and calibrated
    ...     if swap:
    ...         y = np.where(y == 0, 1, np.where(y == 1, 0, y))
    ...     return p, y
    >>> ps, ys = sample(500, False)
    >>> pt, yt = sample(200, True)
    >>> r = accuracy_gap_test(ps, ys, pt, yt, random_state=0)
    >>> r.concept_shift_detected, round(r.predicted_accuracy, 1)
    (True, 0.9)
    """
    alpha = check_unit_interval(alpha, name="alpha")
    n_bootstrap = check_int(n_bootstrap, name="n_bootstrap", minimum=1)
    check_choice(given, ("input", "label"), name="given")
    ps, ys, pt, yt, w = _prepare(
        source_probs, source_labels, target_probs, target_labels, source_weights
    )
    n_s, n_t = ps.shape[0], pt.shape[0]
    if _too_small(n_s, n_t, "accuracy_gap_test"):
        nan = float("nan")
        return AccuracyGapResult(nan, nan, nan, nan, nan, False, nan, nan, n_t, n_s, alpha)
    rng = check_random_state(random_state)
    correct_s = (ps.argmax(axis=1) == ys).astype(np.float64)
    correct_t = (pt.argmax(axis=1) == yt).astype(np.float64)
    ds, dt = _given_design(given, ps, ys), _given_design(given, pt, yt)

    d, c, ww = _calibration_fit(ds, correct_s, w)
    m = _sigmoid(dt @ fit_logistic(d, c, ww))
    predicted = float(m.mean())
    observed = float(correct_t.mean())
    se_binom = float(math.sqrt(float(np.sum(m * (1.0 - m)))) / n_t)

    # parametric bootstrap of the map: redraw the source outcomes from the fitted map (a source
    # without a single error still gets an honest uncertainty), refit, re-predict
    m_s = _sigmoid(ds @ fit_logistic(d, c, ww))
    redraw = (rng.random((n_bootstrap, n_s)) < m_s[None, :]).astype(np.float64)
    d_b, c_b, w_b = _calibration_fit(ds, redraw, w)
    pred_b = _sigmoid(fit_logistic(d_b, c_b, w_b) @ dt.T).mean(axis=1)
    se_est = float(np.std(pred_b, ddof=1)) if n_bootstrap > 1 else 0.0

    se = math.sqrt(se_binom**2 + se_est**2)
    # continuity correction of the binomial count (half a row)
    gap = observed - predicted + 0.5 / n_t
    if se > 0:
        z = gap / se
        pvalue = smallest_pvalue(float(stats.norm.cdf(z)))  # tails underflow to 0
    else:
        z = 0.0 if observed >= predicted else -math.inf
        pvalue = 1.0 if observed >= predicted else 0.0
    margin = float(stats.norm.ppf(1.0 - alpha)) * se
    return AccuracyGapResult(
        observed_accuracy=observed,
        predicted_accuracy=predicted,
        margin=float(margin),
        statistic=float(z),
        pvalue=pvalue,
        concept_shift_detected=bool(pvalue < alpha),
        se_binomial=se_binom,
        se_estimator=se_est,
        n_target_labels=n_t,
        n_source=n_s,
        alpha=alpha,
    )


def conditional_shift_test(
    source_probs: Any,
    source_labels: Any,
    target_probs: Any,
    target_labels: Any,
    *,
    source_weights: Any = None,
    given: str = "input",
    alpha: float = 0.05,
) -> ConditionalShiftResult:
    """Test P(y | x) by asking whether y helps a domain classifier beyond x.

    Pool the labeled source rows (domain 0, weighted) and the labeled target rows (domain 1) and
    fit

    .. math::
        \\operatorname{logit} P(d = 1 \\mid x, y) = a + b\\,\\operatorname{logit} c(x)
        + \\gamma\\,\\ell(x, y), \\qquad \\ell(x, y) = \\hat p(y \\mid x),

    where :math:`c(x)` is the model's confidence and :math:`\\ell` how plausible the label is
    to the source model (a probability, not its log: bounded, so a few labels the model finds
    impossible cannot dominate the fit and the Wald test keeps its level with 200 labels). If
    P(y | x) is unchanged, then given x the label carries no information about the domain and
    :math:`\\gamma = 0`. The statistic is the robust (sandwich) Wald
    :math:`z = \\hat\\gamma / \\widehat{se}`, two-sided normal p-value, valid for weighted
    source rows (White, 1982).

    Parameters
    ----------
    source_probs, target_probs : array-like of shape (n, K)
        Class probabilities on labeled source rows not used to train the model, and on labeled
        target rows.
    source_labels, target_labels : array-like of shape (n,)
        Integer class indices 0..K-1.
    source_weights : array-like of shape (n_source,), optional
        Weights that make the source look like the target under the tested hypothesis.
    given : {"input", "label"}
        ``"input"`` (above) tests P(y | x). ``"label"`` replaces :math:`a + b\\,
        \\operatorname{logit} c(x)` by one intercept per class, so the test asks whether, *given
        the class*, the target rows are less (or more) typical of it: a test of P(x | y), the
        null of pure label shift, immune to errors in label weights.
    alpha : float
        Level of the test.

    Returns
    -------
    ConditionalShiftResult

    Notes
    -----
    H0: :math:`P_T(y \\mid x) = P_S(y \\mid x)`; H1: the label tells the domains apart beyond
    the input. The model's probabilities summarise x; the test is a conditional-independence
    test of y and the domain given that summary (cf. the "domain classifier" tests of Lipton et
    al., 2018, and Rabanser et al., 2019, "Failing loudly", NeurIPS).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> def sample(n, swap):
    ...     y = rng.integers(0, 3, n)
    ...     p = np.full((n, 3), 0.05); p[np.arange(n), y] = 0.9
    ...     y = np.where(rng.random(n) < 0.1, (y + 1) % 3, y)
    ...     return p, (np.where(y == 0, 1, np.where(y == 1, 0, y)) if swap else y)
    >>> ps, ys = sample(500, False)
    >>> pt, yt = sample(200, True)
    >>> bool(conditional_shift_test(ps, ys, pt, yt).pvalue < 1e-6)
    True
    """
    alpha = check_unit_interval(alpha, name="alpha")
    check_choice(given, ("input", "label"), name="given")
    ps, ys, pt, yt, w = _prepare(
        source_probs, source_labels, target_probs, target_labels, source_weights
    )
    n_s, n_t = ps.shape[0], pt.shape[0]
    if _too_small(n_s, n_t, "conditional_shift_test"):
        nan = float("nan")
        return ConditionalShiftResult(nan, nan, nan, nan, False, n_t, n_s, alpha)
    probs = np.vstack([ps, pt])
    labels = np.concatenate([ys, yt])
    ell = probs[np.arange(labels.size), labels]
    design = np.column_stack([_given_design(given, probs, labels), ell])
    domain = np.concatenate([np.zeros(n_s), np.ones(n_t)])
    # source weights sum to n_t, so the two domains weigh the same
    weights = np.concatenate([w * (n_t / n_s), np.ones(n_t)])
    beta = fit_logistic(design, domain, weights)
    cov = sandwich_cov(design, domain, beta, weights)
    se = float(math.sqrt(max(float(cov[-1, -1]), 0.0)))
    coef = float(beta[-1])
    if se > 0 and math.isfinite(se):
        z = coef / se
        pvalue = smallest_pvalue(float(2.0 * stats.norm.sf(abs(z))))
    else:
        z, pvalue = 0.0, 1.0
    return ConditionalShiftResult(
        statistic=float(z),
        pvalue=pvalue,
        coefficient=coef,
        standard_error=se,
        concept_shift_detected=bool(pvalue < alpha),
        n_target_labels=n_t,
        n_source=n_s,
        alpha=alpha,
    )


def decompose_accuracy_drop(
    source_probs: Any,
    source_labels: Any,
    target_probs: Any,
    target_labels: Any,
    *,
    source_weights: Any = None,
    alpha: float = 0.05,
    n_bootstrap: int = 200,
    random_state: Any = None,
) -> AccuracyDecomposition:
    """Split the accuracy drop from source to target into a P(x) part and a P(y | x) part.

    .. math::
        acc_S - acc_T = (acc_S - \\widehat{acc}_T) + (\\widehat{acc}_T - acc_T),
        \\qquad \\widehat{acc}_T = \\frac{1}{n_T}\\sum_{i \\in T} m(c(x_i)),

    where :math:`m` is the source calibration map of :func:`accuracy_gap_test` (fitted on the
    source rows weighted by ``source_weights``, e.g. importance weights): the first part is what
    the move of the inputs costs with the old P(y | x), the second what the change of P(y | x)
    costs on the new inputs (cf. Cai, Namkoong & Yadlowsky, 2023, "Diagnosing model performance
    under distribution shift"). Percentile intervals come from a joint bootstrap of the source
    and target rows.

    Parameters
    ----------
    source_probs, target_probs : array-like of shape (n, K)
        Class probabilities on labeled source rows not used in training, and on labeled target
        rows.
    source_labels, target_labels : array-like of shape (n,)
        Integer class indices 0..K-1.
    source_weights : array-like, optional
        Importance weights of the source rows.
    alpha : float
        Intervals have level ``1 - alpha``.
    n_bootstrap : int
        Bootstrap replicates.
    random_state : int, Generator or None
        Seed of the bootstrap.

    Returns
    -------
    AccuracyDecomposition

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> def sample(n, swap):
    ...     y = rng.integers(0, 3, n)
    ...     p = np.full((n, 3), 0.05); p[np.arange(n), y] = 0.9
    ...     y = np.where(rng.random(n) < 0.1, (y + 1) % 3, y)
    ...     return p, (np.where(y == 0, 1, np.where(y == 1, 0, y)) if swap else y)
    >>> ps, ys = sample(500, False)
    >>> pt, yt = sample(300, True)
    >>> d = decompose_accuracy_drop(ps, ys, pt, yt, random_state=0)
    >>> abs(d.covariate_part) < 0.05, d.concept_part > 0.4
    (True, True)
    """
    alpha = check_unit_interval(alpha, name="alpha")
    n_bootstrap = check_int(n_bootstrap, name="n_bootstrap", minimum=2)
    ps, ys, pt, yt, w = _prepare(
        source_probs, source_labels, target_probs, target_labels, source_weights
    )
    n_s, n_t = ps.shape[0], pt.shape[0]
    if _too_small(n_s, n_t, "decompose_accuracy_drop"):
        nan = float("nan")
        return AccuracyDecomposition(
            nan, nan, nan, nan, nan, nan, (nan, nan), (nan, nan), (nan, nan), alpha
        )
    rng = check_random_state(random_state)
    correct_s = (ps.argmax(axis=1) == ys).astype(np.float64)
    correct_t = (pt.argmax(axis=1) == yt).astype(np.float64)
    ds, dt = _confidence_design(ps), _confidence_design(pt)

    d, c, ww = _calibration_fit(ds, correct_s, w)
    m = _sigmoid(dt @ fit_logistic(d, c, ww))
    acc_s, acc_t, pred = float(correct_s.mean()), float(correct_t.mean()), float(m.mean())

    boot_s = rng.multinomial(n_s, np.full(n_s, 1.0 / n_s), size=n_bootstrap).astype(np.float64)
    boot_t = rng.multinomial(n_t, np.full(n_t, 1.0 / n_t), size=n_bootstrap).astype(np.float64)
    d_b, c_b, w_b = _calibration_fit(ds, correct_s, boot_s * w[None, :])
    m_b = _sigmoid(fit_logistic(d_b, c_b, w_b) @ dt.T)  # (B, n_t)
    acc_s_b = boot_s @ correct_s / n_s
    acc_t_b = boot_t @ correct_t / n_t
    pred_b = np.sum(boot_t * m_b, axis=1) / n_t

    def ci(values: FloatArray) -> tuple[float, float]:
        lo, hi = np.quantile(values, [alpha / 2.0, 1.0 - alpha / 2.0])
        return float(lo), float(hi)

    return AccuracyDecomposition(
        source_accuracy=acc_s,
        target_accuracy=acc_t,
        predicted_target_accuracy=pred,
        total_drop=acc_s - acc_t,
        covariate_part=acc_s - pred,
        concept_part=pred - acc_t,
        total_ci=ci(acc_s_b - acc_t_b),
        covariate_ci=ci(acc_s_b - pred_b),
        concept_ci=ci(pred_b - acc_t_b),
        alpha=alpha,
    )
