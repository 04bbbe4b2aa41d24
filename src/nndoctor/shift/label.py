r"""Label-shift weights :math:`w(y) = q(y) / p(y)` from a model's predicted probabilities.

Under label shift the class proportions change (:math:`p(y) \to q(y)`) while each class looks the
same (:math:`p(x \mid y) = q(x \mid y)`). Then the target posterior is the source posterior
reweighted by :math:`w` and renormalized,

.. math:: q(y \mid x) = \frac{w(y)\, p(y \mid x)}{\sum_k w(k)\, p(k \mid x)} ,

and training with per-class weights :math:`w(y)` corrects the loss. :class:`LabelShiftEstimator`
estimates :math:`w` from the probabilities a fixed model gives on a *held-out labeled source set*
and on the *unlabeled target set*:

* ``"em-bcts"`` (default): maximum likelihood by EM (Saerens et al., 2002) on posteriors
  calibrated with bias-corrected temperature scaling (Alexandari et al., 2020);
* ``"em"``: the same EM on the raw, uncalibrated posteriors (kept as the baseline it is);
* ``"bbse-hard"`` / ``"bbse-soft"``: black-box shift estimation (Lipton et al., 2018) with the
  joint confusion matrix of hard predictions or of probabilities, solved exactly or, when the
  exact solution has negative weights, by constrained maximum likelihood (Garg et al., 2020);
* ``"rlls"``: regularized learning under label shift (Azizzadenesheli et al., 2019).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from nndoctor._results import ResultMixin
from nndoctor._validation import (
    check_choice,
    check_class_indices,
    check_fitted,
    check_int,
    check_matrix,
    check_probabilities,
    check_random_state,
    check_unit_interval,
)
from nndoctor.exceptions import (
    DataValidationError,
    IllConditionedWarning,
    InvalidParameterError,
    NNDoctorError,
    SmallSampleWarning,
)
from nndoctor.shift._common import canonical_order
from nndoctor.shift._engines import is_dask

__all__ = ["LabelShiftEstimator", "LabelShiftResult"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
LabelMethod = Literal["em-bcts", "em", "bbse-hard", "bbse-soft", "rlls"]
LabelInputs = Literal["probs", "log_probs", "logits"]
_METHODS = tuple(sorted(get_args(LabelMethod)))
_INPUTS = tuple(sorted(get_args(LabelInputs)))
MIN_TARGET_ROWS = 10
"""Fewer target rows: the estimated target proportions are flagged ``insufficient_data``."""
MAX_BOOTSTRAP = 100_000
"""The most bootstrap replicates an interval takes (more is refused, with the reason)."""
_LOG_PROBS_ATOL = 1e-4  # log-probability rows must have |logsumexp| below this
# candidate floors c for log-scale inputs: z <- max(z, max_k z_k - c), chosen by held-out NLL
_LOG_FLOOR = 1e-12  # probabilities are floored here before taking logs (performance.py)
_PROBS_LOG_FLOOR = 1e-300  # inputs="probs": logs of probabilities floored here (only 0 is lost)
_LOGIT_FLOORS = (float("inf"), 1000.0, 300.0, 100.0, 50.0, -float(np.log(_LOG_FLOOR)), 10.0)
_SINGULAR_RCOND = 1e-10  # smallest / largest singular value below this: singular
_NEGATIVE_TOL = 1e-9  # BBSE weights above -this are rounding of 0, not an infeasible solution


@dataclass(frozen=True, slots=True)
class LabelShiftResult(ResultMixin):
    r"""Estimated label shift.

    Attributes
    ----------
    weights : ndarray of shape (n_classes,)
        :math:`w(y) = q(y) / p(y)`; :math:`\sum_y w(y) p(y) = 1`.
    target_prior : ndarray
        Estimated target class proportions :math:`q(y)`.
    source_prior : ndarray
        Source class proportions :math:`p(y)` the weights refer to (for ``em-bcts`` the mean
        calibrated posterior on the held-out set; otherwise the label frequencies).
    ci_low, ci_high : ndarray
        Bootstrap percentile interval of the weights (NaN when ``n_bootstrap=0``).
    method : str
        Estimator used.
    condition_number : float
        2-norm condition number of the confusion matrix (BBSE, RLLS); NaN for EM.
    prior_ci_low, prior_ci_high : ndarray
        Bootstrap percentile interval of the target prior.
    n_source, n_target : int
        Rows of the held-out source set and of the target set.
    n_bootstrap : int
        Bootstrap replicates behind the intervals.
    confidence : float
        Coverage of the intervals.
    converged : bool
        EM reached its tolerance (EM methods, and BBSE when its constrained solve was needed;
        always true otherwise).
    n_iter : int
        EM iterations (for BBSE: of its constrained solve; 0 when the linear system was solved
        directly, and for RLLS).
    clipped_classes : tuple of int
        Classes whose weight in the unconstrained solution was negative, i.e. the data pushed
        them below 0. BBSE then returns the constrained maximum-likelihood solution (usually 0
        for these classes; all classes are re-fitted, not merely rescaled); RLLS and the
        singular-matrix fallback clip them to 0 and renormalize.
    temperature : float
        Fitted temperature of the calibration (``em-bcts``; NaN otherwise).
    class_names : tuple of str
        Names of the classes, in column order, for display (empty: the class indices). Set it
        with ``dataclasses.replace(result, class_names=...)``; the estimator works on indices.
    insufficient_data : bool
        Fewer than ``MIN_TARGET_ROWS`` target rows: the estimate is no evidence of a label
        shift (a :class:`~nndoctor.exceptions.SmallSampleWarning` says so), and the intervals,
        which a bootstrap over so few rows would make falsely narrow, are NaN.
    """

    weights: FloatArray
    target_prior: FloatArray
    source_prior: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    method: str
    condition_number: float
    prior_ci_low: FloatArray = field(repr=False)
    prior_ci_high: FloatArray = field(repr=False)
    n_source: int = 0
    n_target: int = 0
    n_bootstrap: int = 0
    confidence: float = 0.95
    converged: bool = True
    n_iter: int = 0
    clipped_classes: tuple[int, ...] = ()
    temperature: float = float("nan")
    class_names: tuple[str, ...] = ()
    insufficient_data: bool = False

    def class_name(self, c: int) -> str:
        """The display name of class ``c`` (its index when no names were given)."""
        return self.class_names[c] if c < len(self.class_names) else str(c)

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return int(self.weights.size)


# ---------------------------------------------------------------------- calibration (BCTS)
def _softmax(z: FloatArray) -> FloatArray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)


def _fit_scaling(
    logits: FloatArray, labels: IntArray, *, bias: bool, init: FloatArray | None = None
) -> FloatArray:
    r"""Fit :math:`\mathrm{softmax}(a \cdot z + b)` by minimum NLL; returns ``[log a, b...]``.

    Temperature scaling (Guo et al., 2017) fits only :math:`a = 1/T`; bias-corrected temperature
    scaling (Alexandari et al., 2020) also fits one bias per class. The logits are first divided
    by their spread (row-centred standard deviation), so that the search for :math:`\log a`
    starts at a sensible scale and its bounds hold for any scale of input (a naive Bayes model's
    log-probabilities reach :math:`-10^5`); the returned :math:`\log a` refers to the input.
    """
    from scipy.optimize import minimize

    spread = float(np.std(logits - logits.mean(axis=1, keepdims=True)))
    log_scale = -float(np.log(spread)) if np.isfinite(spread) and spread > 0 else 0.0
    logits = logits * float(np.exp(log_scale))
    if init is not None:
        init = np.r_[init[0] - log_scale, init[1:]]
    n, k = logits.shape
    onehot = np.zeros((n, k))
    onehot[np.arange(n), labels] = 1.0
    true_logit = logits[np.arange(n), labels]
    zeros = np.zeros(k)

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        a = float(np.exp(theta[0]))
        b = theta[1:] if bias else zeros
        z = a * logits + b
        zmax = z.max(axis=1, keepdims=True)
        e = np.exp(z - zmax)
        se = e.sum(axis=1, keepdims=True)
        lse = np.log(se) + zmax
        nll = float(np.mean(lse[:, 0]) - np.mean(a * true_logit + b[labels]))
        g = (e / se - onehot) / n
        grad_s = float(np.sum(g * logits)) * a
        grad = np.r_[grad_s, g.sum(axis=0)] if bias else np.array([grad_s])
        return nll, grad

    x0 = init if init is not None else np.zeros(1 + (k if bias else 0))
    bounds = [(-8.0, 8.0)] + ([(None, None)] * k if bias else [])
    res = minimize(
        objective, x0, jac=True, method="L-BFGS-B", bounds=bounds,
        options={"maxiter": 500, "ftol": 1e-12, "gtol": 1e-8},
    )  # fmt: skip
    theta = np.asarray(res.x, dtype=np.float64)
    theta[0] += log_scale
    return theta


def _floor_logits(logits: FloatArray, floor: float) -> FloatArray:
    """Raise every logit to at least ``row max - floor`` (``floor = inf``: unchanged)."""
    if not np.isfinite(floor):
        return logits
    return np.asarray(
        np.maximum(logits, logits.max(axis=1, keepdims=True) - floor), dtype=np.float64
    )


def _scaled_nll(logits: FloatArray, labels: IntArray, theta: FloatArray) -> float:
    z = float(np.exp(theta[0])) * logits + theta[1:]
    return float(np.mean(_logsumexp(z) - z[np.arange(labels.size), labels]))


def _apply_scaling(logits: FloatArray, theta: FloatArray) -> FloatArray:
    a = float(np.exp(theta[0]))
    b = theta[1:] if theta.size > 1 else 0.0
    return _softmax(a * logits + b)


def _log(probs: FloatArray) -> FloatArray:
    return np.asarray(np.log(np.maximum(probs, _LOG_FLOOR)), dtype=np.float64)


def _logsumexp(z: FloatArray) -> FloatArray:
    zmax = z.max(axis=1, keepdims=True)
    return np.asarray(np.log(np.exp(z - zmax).sum(axis=1)) + zmax[:, 0], dtype=np.float64)


@dataclass(slots=True)
class _Scores:
    """One set of model outputs in both forms the estimators use.

    ``probs``: posteriors (rows sum to 1); ``logits``: log-scale scores whose softmax is
    ``probs`` (the input itself for ``log_probs`` / ``logits``; floored logs for ``probs``).
    """

    probs: FloatArray
    logits: FloatArray

    def take(self, idx: npt.NDArray[np.integer[Any]]) -> _Scores:
        return _Scores(self.probs[idx], self.logits[idx])


def _in_canonical_order(S: _Scores, y: IntArray) -> tuple[_Scores, IntArray]:
    """The rows and their labels in an order fixed by their content, so that the bootstrap's
    resamples, drawn from ``random_state`` by position, do not depend on the rows' order."""
    order = canonical_order(S.probs, S.logits, y)
    return S.take(order), y[order]


def _check_scores(scores: Any, *, inputs: str, name: str, n_classes: int | None = None) -> _Scores:
    """Validate a model's outputs given as probabilities, log-probabilities or logits."""
    if inputs == "probs":
        P = check_probabilities(scores, name=name, n_classes=n_classes)
        return _Scores(P, np.log(np.maximum(P, _PROBS_LOG_FLOOR)))
    hint = (
        "pass finite values (for log-probabilities use the model's predict_log_proba, which "
        "is computed stably, or inputs='probs')"
    )
    try:
        Z: FloatArray = np.asarray(check_matrix(scores, name=name), dtype=np.float64)
    except DataValidationError as err:
        raise DataValidationError(f"{err}; with inputs={inputs!r} {hint}") from err
    if Z.shape[1] < 2:
        raise DataValidationError(
            f"{name} has {Z.shape[1]} column; pass one {inputs} column per class (at least 2; "
            "for a binary decision_function pass np.c_[-d / 2, d / 2])"
        )
    if n_classes is not None and Z.shape[1] != n_classes:
        raise DataValidationError(
            f"{name} has {Z.shape[1]} classes but {n_classes} were expected; "
            "pass outputs of the same model"
        )
    if inputs == "log_probs":
        lse = _logsumexp(Z)
        worst = int(np.argmax(np.abs(lse)))
        if abs(float(lse[worst])) > _LOG_PROBS_ATOL:
            raise DataValidationError(
                f"{name} rows must be log-probabilities (logsumexp of each row = 0; row "
                f"{worst} gives {float(lse[worst]):.4g}); pass predict_log_proba output, or "
                "inputs='logits' for unnormalized scores"
            )
    return _Scores(_softmax(Z), Z)


# ---------------------------------------------------------------------- the estimators' cores
def _em(
    posteriors: FloatArray, source_prior: FloatArray, *, tol: float, max_iter: int
) -> tuple[FloatArray, bool, int]:
    r"""Saerens-Latinne-Decaestecker EM: :math:`q \leftarrow \frac1n \sum_i
    \mathrm{normalize}(p(\cdot \mid x_i)\, q / p)`, started at :math:`q = p`."""
    q = source_prior.copy()
    for it in range(1, max_iter + 1):
        post = posteriors * (q / source_prior)[None, :]
        post /= post.sum(axis=1, keepdims=True)
        new = post.mean(axis=0)
        if np.max(np.abs(new - q)) < tol:
            return new, True, it
        q = new
    return q, False, max_iter


def _joint_confusion(scores: FloatArray, labels: IntArray, k: int) -> FloatArray:
    """C[i, j] = P(prediction i, label j) on the held-out set (scores: one-hot or probabilities)."""
    onehot = np.zeros((labels.size, k))
    onehot[np.arange(labels.size), labels] = 1.0
    return np.asarray(scores.T @ onehot / labels.size, dtype=np.float64)


def _hard(probs: FloatArray) -> FloatArray:
    out = np.zeros_like(probs)
    out[np.arange(probs.shape[0]), np.argmax(probs, axis=1)] = 1.0
    return out


def _rlls_delta(k: int, n: int, *, coefficient: float, delta: float = 0.05) -> float:
    r""":math:`\Delta_C` of Azizzadenesheli et al. (2019), scaled by ``coefficient``."""
    log_term = np.log(2 * k / delta)
    return float(coefficient * 3 * (2 * log_term / (3 * n) + np.sqrt(2 * log_term / n)))


def _rlls_theta(C: FloatArray, b: FloatArray, reg: float) -> FloatArray:
    r"""Solve :math:`\min_{\theta \ge -1} \lVert C\theta - b\rVert + \Delta \lVert\theta\rVert`."""
    from scipy.optimize import minimize

    eps = 1e-14

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        r = C @ theta - b
        nr = float(np.sqrt(r @ r + eps))
        nt = float(np.sqrt(theta @ theta + eps))
        return nr + reg * nt, C.T @ r / nr + reg * theta / nt

    x0 = np.maximum(np.linalg.lstsq(C, b, rcond=None)[0], -1.0)
    res = minimize(
        objective, x0, jac=True, method="L-BFGS-B", bounds=[(-1.0, None)] * b.size,
        options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-10},
    )  # fmt: skip
    return np.asarray(res.x, dtype=np.float64)


def _bbse_constrained(
    C: FloatArray, mu: FloatArray, p: FloatArray, *, tol: float, max_iter: int
) -> tuple[FloatArray, bool, int]:
    r"""Constrained maximum-likelihood solution of the BBSE system :math:`C w = \mu`.

    .. math:: \hat w = \arg\max_{w \ge 0,\ p^\top w = 1} \sum_i \hat\mu_i
              \log\,(C w)_i ,

    the multinomial likelihood of the target's predicted-class frequencies :math:`\hat\mu`
    under the confusion-matrix model :math:`P_\text{target}(\hat y = i) = (C w)_i`. Garg et al.
    (2020) show that BBSE is this maximum-likelihood estimator with the model "calibrated" to
    :math:`P(y \mid \hat y)`; the objective is concave in :math:`q = p \odot w` on the simplex,
    its maximum is :math:`C^{-1}\mu` whenever that is non-negative, and otherwise the feasible
    :math:`w` closest to the data in the Kullback-Leibler sense. Solved by the EM of Saerens et
    al. (2002) on the :math:`k` predicted classes, with :math:`M_{ij} = C_{ij}/p_j =
    P(\hat y = i \mid y = j)`:

    .. math:: q_j \leftarrow q_j \sum_i \hat\mu_i \frac{M_{ij}}{(M q)_i} ,

    started at :math:`q = p`; it increases the likelihood monotonically and keeps :math:`q` on
    the simplex, so :math:`w = q / p \ge 0` and :math:`p^\top w = 1` hold exactly (up to
    rounding). Returns ``(w, converged, n_iter)``.
    """
    rows = mu > 0  # predicted classes the target never shows add nothing to the likelihood
    M, m = (C / p[None, :])[rows], mu[rows]
    q = p.copy()
    for it in range(1, max_iter + 1):
        new = q * (M.T @ (m / (M @ q)))
        new /= new.sum()
        if np.max(np.abs(new - q)) < tol:
            return new / p, True, it
        q = new
    return q / p, False, max_iter


@dataclass(slots=True)
class _SourceState:
    """What ``fit`` learns from the held-out source set."""

    n_classes: int
    source_prior: FloatArray
    theta: FloatArray | None = None  # calibration parameters (em-bcts)
    floor: float = float("inf")  # logit floor applied before the calibration (em-bcts)
    confusion: FloatArray | None = None  # joint confusion matrix (bbse, rlls)
    n: int = 0


@dataclass(slots=True)
class _Estimate:
    weights: FloatArray
    source_prior: FloatArray
    condition_number: float = float("nan")
    converged: bool = True
    n_iter: int = 0
    clipped: tuple[int, ...] = ()
    singular: bool = False
    never_predicted: tuple[int, ...] = ()


class LabelShiftEstimator:
    r"""Estimate label-shift weights :math:`w(y) = q(y)/p(y)` and correct predictions.

    Parameters
    ----------
    method : {"em-bcts", "em", "bbse-hard", "bbse-soft", "rlls"}
        ``"em-bcts"`` (default) calibrates the model on the held-out source set with
        bias-corrected temperature scaling, :math:`\tilde p(y\mid x) =
        \mathrm{softmax}(\log p(\cdot\mid x)/T + b)_y`, takes the source prior to be the mean
        calibrated posterior :math:`p(y) = \frac1n\sum_i \tilde p(y \mid x_i)` (so that a target
        with no shift gives :math:`w = 1` exactly, since that is EM's fixed point), and runs EM

        .. math:: q^{(t+1)}(y) = \frac1{n_t}\sum_j
                  \frac{\tilde p(y\mid x_j)\, q^{(t)}(y)/p(y)}
                       {\sum_k \tilde p(k\mid x_j)\, q^{(t)}(k)/p(k)} .

        ``"em"``: the same EM on raw posteriors with the label frequencies as source prior.
        ``"bbse-hard"`` / ``"bbse-soft"``: solve :math:`C w = \mu` where
        :math:`C_{ij} = P_\text{source}(\hat y = i, y = j)` is the *joint* confusion matrix (of
        hard predictions, or of probabilities for ``soft``) and :math:`\mu_i =
        P_\text{target}(\hat y = i)`. The conditional matrix :math:`P(\hat y = i \mid y = j)`
        would give :math:`q` instead of :math:`w`. The system is solved exactly,
        :math:`w = C^{-1}\mu`; when that has negative entries (which it often has under a strong
        shift: classes absent from the target come out slightly negative), the weights are the
        constrained maximum-likelihood solution

        .. math:: \hat w = \arg\max_{w \ge 0,\ p^\top w = 1}
                  \sum_i \hat\mu_i \log\,(C w)_i ,

        the multinomial likelihood of the target's predicted-class counts (Garg et al., 2020:
        BBSE is maximum likelihood with the confusion-matrix calibration), solved by EM. It
        equals :math:`C^{-1}\mu` whenever that is feasible, so this changes nothing for a
        mild shift; otherwise it re-fits every class under the constraints, which on digits at
        :math:`\alpha = 0.1` lowers the median weight MSE over 500 trials from 0.0072 (clipping
        negatives to 0 and rescaling, the rule of the first release) to 0.0060. A singular
        :math:`C` falls back (with a warning) to the minimum-norm least-squares solution for
        :math:`\theta = w - 1`, which leaves unidentified directions at "no shift", with
        negative weights clipped to 0 and the weights renormalized so that
        :math:`\sum_y w(y) p(y) = 1`.
        ``"rlls"``: :math:`\hat\theta = \arg\min_{\theta \ge -1} \lVert C\theta - b\rVert_2
        + \Delta_C\lVert\theta\rVert_2` with :math:`b = \mu - C\mathbf 1`, :math:`C` the hard
        joint confusion matrix and :math:`\Delta_C = c \cdot 3\,(\tfrac{2\log(2k/\delta)}{3n} +
        \sqrt{2\log(2k/\delta)/n})`, :math:`\delta = 0.05`; then :math:`w = 1 + \hat\theta`.
    n_bootstrap : int
        Bootstrap replicates (source and target resampled, the calibration refitted) for the
        percentile intervals; 0 skips them (intervals are NaN).
    confidence : float
        Coverage of the intervals.
    random_state : int, Generator or None
        Seed of the bootstrap.
    max_iter : int
        EM iterations (EM methods, and BBSE's constrained solve).
    tol : float
        EM stops when no class proportion moves by more than this.
    max_condition : float
        Warn (:class:`~nndoctor.exceptions.IllConditionedWarning`) when the confusion matrix's
        condition number exceeds this.
    rlls_coefficient : float
        The constant :math:`c` in RLLS's :math:`\Delta_C` (0.01 as in the authors' code).
    inputs : {"probs", "log_probs", "logits"}
        What :meth:`fit`, :meth:`estimate`, :meth:`calibrate` and :meth:`adjust` receive:
        predicted probabilities (rows sum to 1; ``predict_proba``), log-probabilities
        (``predict_log_proba``; each row's :math:`\log\sum_y e^{z_y}` must be 0) or logits /
        decision scores :math:`z` with :math:`p(y \mid x) = \mathrm{softmax}(z)_y` (any finite
        reals; ``decision_function``, a network's last layer). Calibration works on
        :math:`z` directly (softmax computed with the log-sum-exp shift), so pass
        log-probabilities or logits whenever the model's probabilities saturate: a probability
        that underflows to 0 (or rounds to 1) in float64 carries no information that a
        temperature could rescale, while its log-probability is still finite. With ``"probs"``
        the logs are taken after flooring at :math:`10^{-300}` (so only exact zeros lose
        information; a probability of :math:`10^{-40}` still ranks below one of
        :math:`10^{-20}`). ``em-bcts`` then raises each logit to at least
        :math:`\max_k z_k - c` and picks the floor
        :math:`c \in \{\infty, 1000, 300, 100, 50, 27.6, 10\}` whose calibrated negative
        log-likelihood on the held-out set is smallest (``logit_floor_``; the bootstrap keeps
        it). This guards temperature scaling, one affine map of :math:`z`, against a few absurd
        log-likelihoods (GaussianNB's near-zero variances give :math:`-10^{10}`) that would
        otherwise force :math:`T \to \infty` and flatten the model. With a floor
        :math:`c < 690`, probabilities and log-probabilities of the same model give the same
        estimate, since an exact zero (log floored at :math:`-690.8`) is raised to
        :math:`\max_k z_k - c` like any other very small probability.

    Attributes
    ----------
    n_classes_ : int
    source_prior_ : ndarray
    temperature_ : float
        :math:`T` of the calibration (em-bcts), NaN otherwise.
    bias_ : ndarray or None
        Per-class bias :math:`b` of the calibration (em-bcts).
    logit_floor_ : float
        The floor :math:`c` chosen for em-bcts (``inf``: none); NaN for the other methods.
    confusion_matrix_ : ndarray or None
        Joint confusion matrix (bbse, rlls).
    condition_number_ : float
        Its condition number (NaN for EM).
    result_ : LabelShiftResult
        The last estimate (what :meth:`adjust` uses by default).

    Notes
    -----
    All methods assume label shift: :math:`p(x \mid y)` is the same in source and target.
    Under covariate or concept shift the weights are not meaningful. The held-out source set
    must not have been used to train the model.

    References
    ----------
    Saerens, Latinne & Decaestecker (2002), "Adjusting the outputs of a classifier to new a
    priori probabilities", Neural Computation 14. Lipton, Wang & Smola (2018), "Detecting and
    correcting for label shift with black box predictors", ICML. Azizzadenesheli et al. (2019),
    "Regularized learning for domain adaptation under label shifts", ICLR. Alexandari, Kundaje &
    Shrikumar (2020), "Maximum likelihood with bias-corrected calibration is hard-to-beat at label
    shift adaptation", ICML. Garg, Wu, Balakrishnan & Lipton (2020), "A unified view of label
    shift estimation", NeurIPS.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> def sample(prior, n):  # two Gaussian classes and their exact posteriors
    ...     y = rng.choice(2, size=n, p=prior)
    ...     x = rng.normal(2.0 * y, 1.0)
    ...     l1 = np.exp(-(x - 2) ** 2 / 2)
    ...     l0 = np.exp(-(x ** 2) / 2)
    ...     p1 = l1 / (l0 + l1)
    ...     return np.c_[1 - p1, p1], y
    >>> Ps, ys = sample([0.5, 0.5], 1000)
    >>> Pt, _ = sample([0.8, 0.2], 1000)
    >>> est = LabelShiftEstimator(n_bootstrap=20, random_state=0).fit(Ps, ys)
    >>> res = est.estimate(Pt)
    >>> np.round(res.target_prior, 1)
    array([0.8, 0.2])
    >>> bool(res.ci_low[0] < res.weights[0] < res.ci_high[0])
    True
    >>> est.adjust(Pt).shape
    (1000, 2)

    Log-probabilities or logits (e.g. ``predict_log_proba``, ``decision_function``) keep what
    saturated probabilities lose; here the logits of the same two-class model:

    >>> Zs, Zt = np.log(Ps + 1e-300), np.log(Pt + 1e-300)
    >>> lg = LabelShiftEstimator(n_bootstrap=0, inputs="logits").fit(Zs, ys)
    >>> np.round(lg.estimate(Zt).target_prior, 1)
    array([0.8, 0.2])
    """

    def __init__(
        self,
        method: LabelMethod = "em-bcts",
        *,
        n_bootstrap: int = 100,
        confidence: float = 0.95,
        random_state: Any = None,
        max_iter: int = 1000,
        tol: float = 1e-8,
        max_condition: float = 100.0,
        rlls_coefficient: float = 0.01,
        inputs: LabelInputs = "probs",
    ) -> None:
        self.method = method
        self.n_bootstrap = n_bootstrap
        self.confidence = confidence
        self.random_state = random_state
        self.max_iter = max_iter
        self.tol = tol
        self.max_condition = max_condition
        self.rlls_coefficient = rlls_coefficient
        self.inputs = inputs

    # ------------------------------------------------------------------ fitting
    def _check_params(self) -> None:
        check_choice(self.method, _METHODS, name="method")
        check_choice(self.inputs, _INPUTS, name="inputs")
        if check_int(self.n_bootstrap, name="n_bootstrap", minimum=0) > MAX_BOOTSTRAP:
            raise InvalidParameterError(
                f"n_bootstrap = {self.n_bootstrap} is more than the maximum of {MAX_BOOTSTRAP:,}: "
                "each replicate refits the estimator (about a millisecond each, kept in memory), "
                "and 1,000 already put the 95% interval's ends within a few percent of their "
                "width; pass at most that many"
            )
        check_unit_interval(self.confidence, name="confidence")
        check_int(self.max_iter, name="max_iter", minimum=1)
        for name in ("tol", "max_condition", "rlls_coefficient"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise InvalidParameterError(f"{name} must be a positive number, got {value!r}")

    def fit(self, source_probs: Any, source_labels: Any) -> LabelShiftEstimator:
        """Learn the calibration / confusion matrix from a held-out labeled source set.

        Parameters
        ----------
        source_probs : array-like of shape (n, n_classes)
            The model's outputs on held-out source rows: probabilities (rows sum to 1),
            log-probabilities or logits, as set by ``inputs``.
        source_labels : array-like of shape (n,)
            Their true labels, integers ``0 .. n_classes - 1`` in the order of the columns.
            Every class must occur at least once.

        Both may be Dask collections with the same partitions (``dask.array`` or
        ``dask.dataframe``, e.g. columns of one frame). Then only sums travel: per partition
        the label counts and, for BBSE/RLLS, the ``C x C`` confusion sums (exact counts for
        hard predictions, so the matrix equals the in-memory one to the last digit).
        ``em-bcts`` fits its calibration on the rows themselves when there are at most
        ``nndoctor.shift._dask_models.CALIBRATION_MAX_ROWS`` (200,000; the fit is then the
        in-memory one), otherwise on a uniform random sample of about that many (seeded by
        ``random_state``), with the source prior the mean calibrated posterior over all rows
        (one more pass). The bootstrap then reweights the rows on Dask (see :meth:`estimate`).

        Returns
        -------
        self
        """
        self._check_params()
        if is_dask(source_probs) or is_dask(source_labels):
            return self._fit_dask(source_probs, source_labels)
        S = _check_scores(source_probs, inputs=str(self.inputs), name="source_probs")
        k = S.probs.shape[1]
        y = _check_class_labels(source_labels, n_rows=S.probs.shape[0], n_classes=k)
        S, y = _in_canonical_order(S, y)
        return self._set_fitted(self._fit_state(S, y, init=None), S, y)

    def _set_fitted(
        self, state: _SourceState, S: _Scores | None, y: IntArray | None
    ) -> LabelShiftEstimator:
        """Store the fitted state (``S``, ``y``: the rows the bootstrap resamples, if held)."""
        self._S_source, self._y_source = S, y
        self._dask_source: tuple[Any, Any] | None = None
        self._state = state
        k = state.n_classes
        self.n_classes_ = k
        self.source_prior_ = self._state.source_prior
        self.temperature_ = (
            float(np.exp(-self._state.theta[0])) if self._state.theta is not None else float("nan")
        )
        self.bias_ = self._state.theta[1:].copy() if self._state.theta is not None else None
        self.logit_floor_ = self._state.floor if self.method == "em-bcts" else float("nan")
        self.confusion_matrix_ = self._state.confusion
        self.condition_number_ = (
            float(np.linalg.cond(self._state.confusion))
            if self._state.confusion is not None
            else float("nan")
        )
        return self

    def _fit_dask(self, source_probs: Any, source_labels: Any) -> LabelShiftEstimator:
        """:meth:`fit` on Dask collections (``nndoctor.shift._dask_models``).

        One pass adds per partition the row count, the label counts and (BBSE, RLLS) the
        joint confusion sums, exact for hard predictions. ``em-bcts`` then fits its calibration
        on the held-out rows brought to the client, all of them when there are at most
        ``CALIBRATION_MAX_ROWS`` (the fit is then the in-memory one), otherwise a uniform random
        sample of about that many (seeded by ``random_state``), and takes the source prior, the
        mean calibrated posterior, over all rows in a second pass.
        """
        from nndoctor.shift._dask_models import CALIBRATION_MAX_ROWS, collect_rows, partition_sums

        data, names = (source_probs, source_labels), ("source_probs", "source_labels")
        inputs, method = str(self.inputs), str(self.method)
        n, counts, conf = partition_sums(_source_sums, data, names, (inputs, method))
        k = int(counts.size)
        _require_every_class(counts)
        freq = counts / n
        if method != "em-bcts":
            confusion = None if method == "em" else conf / n
            self._set_fitted(_SourceState(k, freq, confusion=confusion, n=n), None, None)
            self._dask_source = data  # the bootstrap reweights it (lazy: no rows held)
            return self
        if n <= CALIBRATION_MAX_ROWS:  # the in-memory fit on every row
            P, y = collect_rows(data, names)
            S = _check_scores(P, inputs=inputs, name="source_probs")
            y = _check_class_labels(y, n_rows=S.probs.shape[0], n_classes=k)
            S, y = _in_canonical_order(S, y)
            return self._set_fitted(self._fit_state(S, y, init=None), S, y)
        seed = int(check_random_state(self.random_state).integers(0, 2**63 - 1))
        P, y = collect_rows(data, names, fraction=CALIBRATION_MAX_ROWS / n, seed=seed)
        S = _check_scores(P, inputs=inputs, name="source_probs")
        y = check_class_indices(y, name="source_labels", n_rows=S.probs.shape[0], n_classes=k)
        fitted = self._fit_state(S, y, init=None)
        args = (inputs, k, fitted.theta, fitted.floor, np.ones(k))
        n_all, total = partition_sums(_posterior_sums, (source_probs,), names[:1], args)
        fitted.source_prior, fitted.n = total / n_all, n
        return self._set_fitted(fitted, S, y)  # the bootstrap resamples the sample

    def _fit_state(
        self,
        S: _Scores,
        y: IntArray,
        *,
        init: FloatArray | None,
        floor: float | None = None,
    ) -> _SourceState:
        k = S.probs.shape[1]
        freq = np.bincount(y, minlength=k) / y.size
        if self.method == "em-bcts":
            if floor is None:  # choose the logit floor by held-out NLL
                fits = []
                for c in _LOGIT_FLOORS:
                    z = _floor_logits(S.logits, c)
                    th = _fit_scaling(z, y, bias=True, init=None)
                    fits.append((_scaled_nll(z, y, th), c, th))
                _, floor, theta = min(fits, key=lambda t: t[0])
            else:
                theta = _fit_scaling(_floor_logits(S.logits, floor), y, bias=True, init=init)
            calibrated = _apply_scaling(_floor_logits(S.logits, floor), theta)
            return _SourceState(k, calibrated.mean(axis=0), theta=theta, floor=floor, n=y.size)
        if self.method == "em":
            return _SourceState(k, freq, n=y.size)
        scores = S.probs if self.method == "bbse-soft" else _hard(S.logits)
        return _SourceState(k, freq, confusion=_joint_confusion(scores, y, k), n=y.size)

    def _check_fitted(self) -> None:
        check_fitted(
            self,
            "_state",
            fit_call="fit(source_probs, source_labels) on a held-out labeled source set",
        )

    def calibrate(self, probs: Any) -> FloatArray:
        """Calibrated posteriors (bias-corrected temperature scaling for ``em-bcts``).

        ``probs`` are the model's outputs in the estimator's ``inputs`` form. For the other
        methods the posteriors are returned uncalibrated (the softmax of log-probabilities or
        logits).

        Examples
        --------
        >>> import numpy as np
        >>> P = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
        >>> est = LabelShiftEstimator(n_bootstrap=0).fit(P, [0, 1, 1, 0])
        >>> est.calibrate(P).sum(axis=1)
        array([1., 1., 1., 1.])
        """
        self._check_fitted()
        S = _check_scores(probs, inputs=str(self.inputs), name="probs", n_classes=self.n_classes_)
        if self._state.theta is None:
            return S.probs
        return _apply_scaling(_floor_logits(S.logits, self._state.floor), self._state.theta)

    # ------------------------------------------------------------------ estimating
    def _estimate_core(self, state: _SourceState, target: _Scores) -> _Estimate:
        p = state.source_prior
        if self.method in ("em-bcts", "em"):
            post = (
                target.probs
                if state.theta is None
                else _apply_scaling(_floor_logits(target.logits, state.floor), state.theta)
            )
            q, converged, n_iter = _em(post, p, tol=float(self.tol), max_iter=self.max_iter)
            return _Estimate(q / p, p, converged=converged, n_iter=n_iter)
        scores = target.probs if self.method == "bbse-soft" else _hard(target.logits)
        return self._solve_bbse(state, scores.mean(axis=0))

    def _solve_bbse(self, state: _SourceState, mu: FloatArray) -> _Estimate:
        """BBSE / RLLS weights from the confusion matrix and the target's prediction rates."""
        p = state.source_prior
        C = state.confusion
        if C is None:  # pragma: no cover - fit always sets it for these methods
            raise NNDoctorError("internal error: confusion matrix missing")
        sv = np.linalg.svd(C, compute_uv=False)
        singular = bool(sv[-1] <= _SINGULAR_RCOND * sv[0])
        cond = float("inf") if singular else float(sv[0] / sv[-1])
        never = tuple(int(i) for i in np.flatnonzero(C.sum(axis=1) <= 0))
        b = mu - C.sum(axis=1)
        converged, n_iter = True, 0
        if self.method == "rlls":
            reg = _rlls_delta(state.n_classes, state.n, coefficient=float(self.rlls_coefficient))
            w = 1.0 + _rlls_theta(C, b, reg)
            clipped = tuple(int(i) for i in np.flatnonzero(w < 0))
        else:
            w = 1.0 + np.linalg.lstsq(C, b, rcond=_SINGULAR_RCOND)[0]
            clipped = tuple(int(i) for i in np.flatnonzero(w < -_NEGATIVE_TOL))
            if clipped and not singular:  # the exact solution is infeasible: constrained ML
                w, converged, n_iter = _bbse_constrained(
                    C, mu, p, tol=float(self.tol), max_iter=self.max_iter
                )
        w = np.maximum(w, 0.0)  # singular fallback and rounding: clip, then renormalize
        total = float(w @ p)
        w = w / total if total > 0 else np.ones_like(w)
        return _Estimate(
            w, p, cond, converged=converged, n_iter=n_iter, clipped=clipped,
            singular=singular, never_predicted=never,
        )  # fmt: skip

    def estimate(self, target_probs: Any) -> LabelShiftResult:
        """Estimate the target class proportions and the weights from unlabeled target rows.

        Parameters
        ----------
        target_probs : array-like of shape (n_target, n_classes)
            The same model's outputs on the target rows (probabilities, log-probabilities or
            logits, as set by ``inputs``). A Dask collection is reduced per partition: BBSE and
            RLLS in one pass (``C`` prediction counts per partition: exact), EM in one pass per
            iteration (``C`` sums of reweighted posteriors per partition), the same iteration
            as in memory (weights equal to rounding). The bootstrap resamples the rows held
            in memory as usual and gives the rows on Dask Poisson(1) weights per replicate
            (the Poisson bootstrap, seeded by ``random_state`` and the partition's index):
            one more pass for BBSE/RLLS, one pass per EM iteration for all replicates at once
            (``B x C`` sums per partition); a held-out set on Dask adds one pass
            (``B x C x C`` confusion sums per partition). For ``em-bcts`` fitted on a sample
            of a large held-out set, the replicates resample that sample.

        Returns
        -------
        LabelShiftResult
        """
        self._check_fitted()
        if is_dask(target_probs):
            est, n_target = self._estimate_dask(target_probs)
            return self._result(est, n_target, None, target_probs)
        T = _check_scores(
            target_probs, inputs=str(self.inputs), name="target_probs", n_classes=self.n_classes_
        )
        T = T.take(canonical_order(T.probs, T.logits))  # as the source rows (see fit)
        return self._result(self._estimate_core(self._state, T), int(T.probs.shape[0]), T)

    def _estimate_dask(self, target: Any) -> tuple[_Estimate, int]:
        """The estimate from passes over a Dask collection (``nndoctor.shift._dask_models``).

        BBSE / RLLS: one pass, per partition the ``C`` prediction counts (hard: exact) or
        probability sums (soft). EM: one pass per iteration, per partition the ``C`` sums of
        the reweighted, renormalized (calibrated) posteriors, exactly the in-memory iteration.
        """
        from nndoctor.shift._dask_models import partition_sums

        state, k, inputs = self._state, self.n_classes_, str(self.inputs)
        names = ("target_probs",)
        p = state.source_prior
        if self.method not in ("em-bcts", "em"):
            n, total = partition_sums(_prediction_sums, (target,), names, (inputs, k, self.method))
            return self._solve_bbse(state, total / n), int(n)
        q, n = p.copy(), 0
        for it in range(1, self.max_iter + 1):
            args = (inputs, k, state.theta, state.floor, q / p)
            n, total = partition_sums(_posterior_sums, (target,), names, args)
            new = total / n
            if np.max(np.abs(new - q)) < self.tol:
                return _Estimate(new / p, p, converged=True, n_iter=it), int(n)
            q = new
        return _Estimate(q / p, p, converged=False, n_iter=self.max_iter), int(n)

    def _result(
        self, est: _Estimate, n_target: int, T: _Scores | None, target: Any = None
    ) -> LabelShiftResult:
        """Warn about the confusion matrix and small samples; intervals; the result.

        ``T``: the target rows in memory; ``target``: the Dask target (``T`` is then None).
        """
        if est.singular:
            detail = (
                f"class(es) {list(est.never_predicted)} are never predicted"
                if est.never_predicted
                else "two or more classes are predicted alike"
            )
            warnings.warn(
                f"the confusion matrix is singular ({detail}); falling back to the "
                "minimum-norm least-squares solution, which leaves unidentifiable classes at "
                "w = 1; use method='em-bcts', a better model, or a larger held-out set",
                IllConditionedWarning,
                stacklevel=3,
            )
        elif est.condition_number > self.max_condition:
            warnings.warn(
                f"the confusion matrix is ill-conditioned (condition number "
                f"{est.condition_number:.3g} > {self.max_condition:g}); the weights are "
                "unreliable; use method='em-bcts' or 'rlls', or a larger held-out set",
                IllConditionedWarning,
                stacklevel=3,
            )
        k = self.n_classes_
        ci = np.full((4, k), np.nan)
        few = n_target < MIN_TARGET_ROWS
        n_bootstrap = int(self.n_bootstrap)
        if few:
            warnings.warn(
                f"target_probs has {n_target} row(s), fewer than {MIN_TARGET_ROWS}: the "
                "estimated target proportions are no evidence of a label shift (no intervals); "
                "pass more target rows",
                SmallSampleWarning,
                stacklevel=3,
            )
        elif n_bootstrap > 0 and T is not None and self._y_source is not None:
            ci = self._bootstrap(T)
        elif n_bootstrap > 0:
            ci = self._bootstrap_dask(T, target, est.weights * est.source_prior)
        result = LabelShiftResult(
            weights=est.weights,
            target_prior=est.weights * est.source_prior,
            source_prior=est.source_prior,
            ci_low=ci[0],
            ci_high=ci[1],
            method=str(self.method),
            condition_number=est.condition_number,
            prior_ci_low=ci[2],
            prior_ci_high=ci[3],
            n_source=int(self._state.n),
            n_target=n_target,
            n_bootstrap=n_bootstrap,
            confidence=float(self.confidence),
            converged=est.converged,
            n_iter=est.n_iter,
            clipped_classes=est.clipped,
            temperature=self.temperature_,
            insufficient_data=few,
        )
        self.result_ = result
        return result

    def _bootstrap(self, T: _Scores) -> FloatArray:
        rng = check_random_state(self.random_state)
        S, y = self._S_source, self._y_source
        if S is None or y is None:  # pragma: no cover - _result checks it first
            raise NNDoctorError("internal error: no held-out rows to resample")
        k = self.n_classes_
        ws, qs = [], []
        init = self._state.theta
        for _ in range(self.n_bootstrap):
            idx = rng.integers(0, y.size, size=y.size)
            if np.unique(y[idx]).size < k:  # a class vanished from the resample: draw again
                idx = _stratified_resample(y, rng)
            state = self._fit_state(S.take(idx), y[idx], init=init, floor=self._state.floor)
            n_t = T.probs.shape[0]
            target = T.take(np.asarray(rng.integers(0, n_t, size=n_t), dtype=np.int64))
            est = self._estimate_core(state, target)
            ws.append(est.weights)
            qs.append(est.weights * est.source_prior)
        return self._percentiles(ws, qs)

    def _percentiles(self, ws: list[FloatArray], qs: list[FloatArray]) -> FloatArray:
        """Percentile intervals of the replicates' weights and target priors (4 x C)."""
        lo, hi = 50 * (1 - self.confidence), 50 * (1 + self.confidence)
        W, Q = np.asarray(ws), np.asarray(qs)
        return np.vstack(
            [
                np.percentile(W, lo, axis=0),
                np.percentile(W, hi, axis=0),
                np.percentile(Q, lo, axis=0),
                np.percentile(Q, hi, axis=0),
            ]
        )

    def _bootstrap_dask(self, T: _Scores | None, target: Any, start: FloatArray) -> FloatArray:
        """The bootstrap when the held-out or the target rows are on Dask (Poisson weights).

        Rows held in memory are resampled as in :meth:`_bootstrap`; rows on Dask get one
        Poisson(1) weight per replicate (the Poisson bootstrap: seeded by ``random_state`` and
        the partition's index, so every pass sees the same weights), and each replicate's
        statistics are weighted sums per partition: label counts and confusion sums
        (``B x C x C`` numbers per partition) for the held-out set, prediction counts
        (BBSE/RLLS, one pass) or reweighted posteriors (EM, one pass per iteration for all
        replicates at once, ``B x C`` numbers per partition, started at the point estimate
        ``start``: the same maximum of the concave likelihood as from the source prior, in
        fewer passes) for the target.
        """
        rng = check_random_state(self.random_state)
        states = self._source_replicates(rng)
        seed = int(rng.integers(0, 2**63 - 1))
        if T is not None:  # the target in memory: resampled as in _bootstrap
            n_t = T.probs.shape[0]
            ests = [
                self._estimate_core(st, T.take(np.asarray(rng.integers(0, n_t, size=n_t))))
                for st in states
            ]
        else:
            ests = self._target_replicates(states, target, seed, start)
        return self._percentiles(
            [e.weights for e in ests], [e.weights * e.source_prior for e in ests]
        )

    def _source_replicates(self, rng: np.random.Generator) -> list[_SourceState]:
        """Bootstrap replicates of the fitted state (held-out rows resampled or reweighted)."""
        S, y, state = self._S_source, self._y_source, self._state
        B, k = int(self.n_bootstrap), self.n_classes_
        if S is not None and y is not None:
            states = []
            for _ in range(B):
                idx = rng.integers(0, y.size, size=y.size)
                if np.unique(y[idx]).size < k:  # a class vanished from the resample
                    idx = _stratified_resample(y, rng)
                states.append(self._fit_state(S.take(idx), y[idx], init=state.theta,
                                              floor=state.floor))  # fmt: skip
            return states
        from nndoctor.shift._dask_models import partition_sums

        if self._dask_source is None:  # pragma: no cover - a Dask fit sets one or the other
            raise NNDoctorError("internal error: no held-out rows to resample")
        seed = int(rng.integers(0, 2**63 - 1))
        args = (str(self.inputs), str(self.method), B, seed)
        names = ("source_probs", "source_labels")
        _, total, counts, conf = partition_sums(
            _source_poisson_sums, self._dask_source, names, args, indexed=True
        )
        out = []
        for b in range(B):
            if np.any(counts[b] == 0):  # a class without weight: keep the fitted state
                out.append(state)
                continue
            freq = counts[b] / total[b]
            confusion = None if state.confusion is None else conf[b] / total[b]
            out.append(_SourceState(k, freq, confusion=confusion, n=state.n))
        return out

    def _target_replicates(
        self, states: list[_SourceState], target: Any, seed: int, start: FloatArray
    ) -> list[_Estimate]:
        """Each replicate's estimate from Poisson-weighted passes over the Dask target."""
        from nndoctor.shift._dask_models import partition_sums

        k, inputs, B = self.n_classes_, str(self.inputs), len(states)
        names = ("target_probs",)
        if self.method not in ("em-bcts", "em"):
            args = (inputs, k, self.method, B, seed)
            _, total, sums = partition_sums(
                _prediction_poisson_sums, (target,), names, args, indexed=True
            )
            return [self._solve_bbse(st, sums[b] / total[b]) for b, st in enumerate(states)]
        P = np.array([st.source_prior for st in states])
        thetas = None if states[0].theta is None else np.array([st.theta for st in states])
        floor = self._state.floor
        Q = np.repeat(start[None, :], B, axis=0)
        for _ in range(self.max_iter):
            em_args = (inputs, k, thetas, floor, Q / P, seed)
            _, total, sums = partition_sums(
                _posterior_poisson_sums, (target,), names, em_args, indexed=True
            )
            new = sums / total[:, None]
            done = bool(np.max(np.abs(new - Q)) < self.tol)
            Q = new
            if done:
                break
        return [_Estimate(Q[b] / P[b], P[b]) for b in range(B)]

    def adjust(self, probs: Any, result: LabelShiftResult | None = None) -> Any:
        r"""Prior-corrected posteriors :math:`q(y\mid x) \propto w(y)\,\tilde p(y\mid x)`.

        Parameters
        ----------
        probs : array-like of shape (n, n_classes)
            The model's outputs on target rows (in the estimator's ``inputs`` form).
        result : LabelShiftResult, optional
            The weights to use; default: the last :meth:`estimate`.

        Returns
        -------
        ndarray of shape (n, n_classes)
            Posteriors for the target prior (calibrated first for ``em-bcts``). For a Dask
            ``probs`` a lazy collection of the same kind (array, or frame with the same
            columns), computed partition by partition; the estimator travels with the graph
            without its held-out rows (only the calibration and the weights).
        """
        self._check_fitted()
        res = result if result is not None else getattr(self, "result_", None)
        if res is None:
            raise NNDoctorError("call estimate(target_probs) first, or pass result=")
        if res.weights.size != self.n_classes_:
            raise DataValidationError(
                f"result has {res.weights.size} classes but the estimator has "
                f"{self.n_classes_}; pass a result from the same model"
            )
        if is_dask(probs):
            from nndoctor.shift._dask_models import map_rows

            light = copy.copy(self)  # the workers need the calibration, not the held-out rows
            light._S_source, light._y_source, light._dask_source = None, None, None
            return map_rows(_adjust_rows, probs, (light, res))
        post = self.calibrate(probs) * res.weights[None, :]
        sums = post.sum(axis=1, keepdims=True)
        out = np.where(sums > 0, post / np.where(sums > 0, sums, 1.0), 1.0 / self.n_classes_)
        return np.asarray(out, dtype=np.float64)

    def __repr__(self) -> str:
        extra = f", inputs={self.inputs!r}" if self.inputs != "probs" else ""
        return f"LabelShiftEstimator(method={self.method!r}{extra})"


def _adjust_rows(part: Any, est: LabelShiftEstimator, result: LabelShiftResult) -> FloatArray:
    """:meth:`LabelShiftEstimator.adjust` on one partition (runs on a Dask worker)."""
    return np.asarray(est.adjust(np.asarray(part, dtype=np.float64), result), dtype=np.float64)


def _stratified_resample(y: IntArray, rng: np.random.Generator) -> IntArray:
    """A bootstrap resample that keeps every class's count (used when a class would vanish)."""
    parts = [rng.choice(np.flatnonzero(y == c), size=int(np.sum(y == c))) for c in np.unique(y)]
    return np.concatenate(parts).astype(np.int64)


def _check_class_labels(labels: Any, *, n_rows: int, n_classes: int) -> IntArray:
    """Labels must be integers 0..n_classes-1, each class present at least once."""
    y = check_class_indices(
        labels,
        name="source_labels",
        n_rows=n_rows,
        n_classes=n_classes,
        dtype_hint=" (encode names with sklearn's LabelEncoder)",
    )
    _require_every_class(np.bincount(y, minlength=n_classes))
    return y


def _require_every_class(counts: IntArray) -> None:
    """Every class must occur in the held-out source set (``counts``: per class)."""
    absent = np.flatnonzero(counts == 0)
    if absent.size:
        raise DataValidationError(
            f"class(es) {absent.tolist()} never occur in the held-out source set; weights "
            "w = q/p are undefined for a class with p = 0; use a larger (stratified) held-out "
            "set or drop those classes"
        )


# ---------------------------------------------------------------------- Dask partition kernels
# (module-level, so that Dask can ship them to the workers; each returns sums over its rows)


def _source_sums(
    part: Any, labels: Any, inputs: str, method: str
) -> tuple[IntArray, FloatArray | None]:
    """A held-out partition's label counts and (BBSE, RLLS) unnormalized confusion sums."""
    S = _check_scores(part, inputs=inputs, name="source_probs")
    k = S.probs.shape[1]
    y = check_class_indices(
        np.asarray(labels).ravel(),
        name="source_labels",
        n_rows=S.probs.shape[0],
        n_classes=k,
        dtype_hint=" (encode names with sklearn's LabelEncoder)",
    )
    counts = np.bincount(y, minlength=k).astype(np.int64)
    if method in ("em", "em-bcts"):
        return counts, np.zeros(())
    scores = S.probs if method == "bbse-soft" else _hard(S.logits)
    return counts, _joint_confusion(scores, y, k) * y.size


def _prediction_sums(part: Any, inputs: str, k: int, method: str) -> tuple[FloatArray]:
    """A target partition's predicted-class counts (hard) or probability sums (soft)."""
    T = _check_scores(part, inputs=inputs, name="target_probs", n_classes=k)
    scores = T.probs if method == "bbse-soft" else _hard(T.logits)
    return (scores.sum(axis=0),)


_POISSON_BLOCK = 8192  # rows whose Poisson weights are drawn at once (the stream's unit)


def _poisson_weights(rows: int, B: int, seed: int, index: int) -> FloatArray:
    """Poisson(1) bootstrap weights (B x rows) of a partition, the same on every pass."""
    rng = np.random.default_rng([seed, index])
    blocks = [
        rng.poisson(1.0, size=(min(_POISSON_BLOCK, rows - i), B)).T
        for i in range(0, rows, _POISSON_BLOCK)
    ]
    return np.concatenate(blocks, axis=1).astype(np.float64) if blocks else np.zeros((B, 0))


def _source_poisson_sums(
    part: Any, labels: Any, inputs: str, method: str, B: int, seed: int, index: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per replicate: total weight, weighted label counts and (BBSE, RLLS) confusion sums."""
    S = _check_scores(part, inputs=inputs, name="source_probs")
    k = S.probs.shape[1]
    y = check_class_indices(
        np.asarray(labels).ravel(), name="source_labels", n_rows=S.probs.shape[0], n_classes=k
    )
    W = _poisson_weights(y.size, B, seed, index)
    onehot = np.zeros((y.size, k))
    onehot[np.arange(y.size), y] = 1.0
    counts = W @ onehot
    if method in ("em", "em-bcts"):
        return W.sum(axis=1), counts, np.zeros(())
    scores = S.probs if method == "bbse-soft" else _hard(S.logits)
    conf = np.einsum("br,ri,rj->bij", W, scores, onehot)
    return W.sum(axis=1), counts, conf


def _prediction_poisson_sums(
    part: Any, inputs: str, k: int, method: str, B: int, seed: int, index: int
) -> tuple[FloatArray, FloatArray]:
    """Per replicate: total weight and weighted prediction counts (or probability sums)."""
    T = _check_scores(part, inputs=inputs, name="target_probs", n_classes=k)
    scores = T.probs if method == "bbse-soft" else _hard(T.logits)
    W = _poisson_weights(scores.shape[0], B, seed, index)
    return W.sum(axis=1), W @ scores


def _posterior_poisson_sums(
    part: Any,
    inputs: str,
    k: int,
    thetas: FloatArray | None,
    floor: float,
    ratios: FloatArray,
    seed: int,
    index: int,
) -> tuple[FloatArray, FloatArray]:
    """Per replicate: total weight and the weighted sums of one EM step (its calibration)."""
    T = _check_scores(part, inputs=inputs, name="target_probs", n_classes=k)
    B, rows = ratios.shape[0], T.probs.shape[0]
    W = _poisson_weights(rows, B, seed, index)
    floored = T.logits if thetas is None else _floor_logits(T.logits, floor)
    sums = np.zeros((B, k))
    step = max(1, _POISSON_BLOCK * 32 // max(B * k, 1))  # about 2 M numbers at once
    for i in range(0, rows, step):
        if thetas is None:
            post = np.broadcast_to(T.probs[None, i : i + step], (B, min(step, rows - i), k))
        else:  # each replicate's own calibration softmax(a z + b)
            z = np.exp(thetas[:, :1, None]) * floored[None, i : i + step] + thetas[:, None, 1:]
            post = np.exp(z - z.max(axis=2, keepdims=True))
            post /= post.sum(axis=2, keepdims=True)
        post = post * ratios[:, None, :]
        post /= post.sum(axis=2, keepdims=True)
        sums += np.einsum("br,brk->bk", W[:, i : i + step], post)
    return W.sum(axis=1), sums


def _posterior_sums(
    part: Any, inputs: str, k: int, theta: FloatArray | None, floor: float, ratio: FloatArray
) -> tuple[FloatArray]:
    r"""One EM step's sums: :math:`\sum_j \mathrm{normalize}(\tilde p(\cdot\mid x_j)\,
    q/p)` over a partition (``ratio = q / p``; all ones: the sum of calibrated posteriors)."""
    T = _check_scores(part, inputs=inputs, name="target_probs", n_classes=k)
    post = T.probs if theta is None else _apply_scaling(_floor_logits(T.logits, floor), theta)
    post = post * ratio[None, :]
    post /= post.sum(axis=1, keepdims=True)
    return (post.sum(axis=0),)
