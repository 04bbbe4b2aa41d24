r"""How accurate is the model on the target, when the target has no labels?

Four estimators, each valid under a different assumption, which every result states:

* ``"atc"`` — average thresholded confidence (Garg et al., 2022): pick the score threshold
  :math:`t` at which the share of held-out source rows scoring above it equals the source
  accuracy; the estimate is the share of target rows scoring above :math:`t`.
* ``"calibrated-confidence"`` — the mean top-class probability on the target after temperature
  scaling on the held-out source set (Guo et al., 2017; "average confidence").
* ``"importance-weighted"`` — the source accuracy reweighted by importance weights
  :math:`\beta(x)` (covariate shift).
* ``"label-shift"`` — the source per-class accuracies reweighted by the label-shift weights
  :math:`w(y)` (label shift).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, overload

import numpy as np
import numpy.typing as npt

from nndoctor._results import ResultMixin
from nndoctor._validation import (
    check_choice,
    check_matrix,
    check_probabilities,
    check_random_state,
)
from nndoctor.exceptions import DataValidationError, InvalidParameterError
from nndoctor.shift.covariate import ImportanceWeighter, effective_sample_size
from nndoctor.shift.label import (
    LabelShiftEstimator,
    LabelShiftResult,
    _apply_scaling,
    _check_class_labels,
    _fit_scaling,
    _log,
)

__all__ = ["AccuracyEstimate", "AccuracyEstimates", "estimate_accuracy"]

FloatArray = npt.NDArray[np.float64]
AccuracyMethod = Literal["atc", "calibrated-confidence", "importance-weighted", "label-shift"]
_METHODS = tuple(sorted(get_args(AccuracyMethod)))

ASSUMPTIONS: dict[str, str] = {
    "atc": (
        "the shift moves confidence and correctness together: the share of target rows "
        "above the source-fitted confidence threshold equals the target accuracy (holds for "
        "many natural shifts; fails when the model is confidently wrong on the target)"
    ),
    "calibrated-confidence": (
        "the model, temperature-scaled on the held-out source set, stays calibrated on the "
        "target (fails under most shifts that add unfamiliar inputs)"
    ),
    "importance-weighted": (
        "covariate shift: P(y | x) is unchanged and the source covers the target's support "
        "(check low overlap and the effective sample size)"
    ),
    "label-shift": (
        "label shift: the class proportions change but each class looks the same "
        "(P(x | y) unchanged), so per-class accuracies carry over"
    ),
}


@dataclass(frozen=True, slots=True)
class AccuracyEstimate(ResultMixin):
    """An estimate of the target accuracy without target labels.

    Attributes
    ----------
    accuracy : float
        Estimated target accuracy.
    method : str
        Estimator used.
    assumption : str
        What must hold for the estimate to be right.
    source_accuracy : float
        Accuracy on the held-out source set (the reference).
    details : dict
        Method-specific numbers (threshold, temperature, ESS, weights).
    """

    accuracy: float
    method: str
    assumption: str
    source_accuracy: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AccuracyEstimates(ResultMixin):
    """Several accuracy estimates side by side (iterable; index by method name).

    Attributes
    ----------
    estimates : tuple of AccuracyEstimate
    source_accuracy : float
    skipped : dict
        Methods that could not run, with the reason.
    """

    estimates: tuple[AccuracyEstimate, ...]
    source_accuracy: float
    skipped: dict[str, str] = field(default_factory=dict)

    def __iter__(self) -> Iterator[AccuracyEstimate]:
        return iter(self.estimates)

    def __len__(self) -> int:
        return len(self.estimates)

    def __getitem__(self, method: str) -> AccuracyEstimate:
        for est in self.estimates:
            if est.method == method:
                return est
        raise KeyError(f"no estimate for {method!r}; have {[e.method for e in self.estimates]}")


def _neg_entropy(P: FloatArray) -> FloatArray:
    return np.asarray(np.sum(P * np.log(np.maximum(P, 1e-300)), axis=1), dtype=np.float64)


def _atc(Ps: FloatArray, correct: FloatArray, Pt: FloatArray, score: str) -> AccuracyEstimate:
    acc_s = float(correct.mean())
    s_src = _neg_entropy(Ps) if score == "negative-entropy" else Ps.max(axis=1)
    s_tgt = _neg_entropy(Pt) if score == "negative-entropy" else Pt.max(axis=1)
    # threshold t with mean(s_src > t) = acc_s
    t = float(np.quantile(s_src, 1.0 - acc_s)) if acc_s < 1 else float(np.min(s_src) - 1.0)
    return AccuracyEstimate(
        float(np.mean(s_tgt > t)),
        "atc",
        ASSUMPTIONS["atc"],
        acc_s,
        {"threshold": t, "score": score},
    )


def _calibrated_confidence(
    Ps: FloatArray, ys: npt.NDArray[np.int64], correct: FloatArray, Pt: FloatArray
) -> AccuracyEstimate:
    theta = _fit_scaling(_log(Ps), ys, bias=False)
    conf = _apply_scaling(_log(Pt), theta).max(axis=1)
    return AccuracyEstimate(
        float(conf.mean()),
        "calibrated-confidence",
        ASSUMPTIONS["calibrated-confidence"],
        float(correct.mean()),
        {"temperature": float(np.exp(-theta[0]))},
    )


def _importance_weighted(correct: FloatArray, weights: FloatArray) -> AccuracyEstimate:
    ess = effective_sample_size(weights)
    acc = float(np.sum(weights * correct) / np.sum(weights))
    # delta-method standard error of a ratio estimator
    se = float(np.sqrt(np.sum((weights * (correct - acc)) ** 2)) / np.sum(weights))
    return AccuracyEstimate(
        acc,
        "importance-weighted",
        ASSUMPTIONS["importance-weighted"],
        float(correct.mean()),
        {"effective_sample_size": ess, "standard_error": se},
    )


def _label_shift(
    Ps: FloatArray, ys: npt.NDArray[np.int64], correct: FloatArray, result: LabelShiftResult
) -> AccuracyEstimate:
    k = Ps.shape[1]
    if result.weights.size != k:
        raise DataValidationError(
            f"label_shift has {result.weights.size} classes but the probabilities have {k}; "
            "pass a result from the same model"
        )
    per_class = np.array([correct[ys == c].mean() for c in range(k)])
    freq = np.bincount(ys, minlength=k) / ys.size
    q = result.weights * freq
    acc = float(np.sum(q * per_class) / np.sum(q))
    return AccuracyEstimate(
        acc,
        "label-shift",
        ASSUMPTIONS["label-shift"],
        float(correct.mean()),
        {
            "per_class_accuracy": per_class,
            "label_weights": result.weights,
            "label_method": result.method,
        },
    )


@overload
def estimate_accuracy(
    source_probs: Any,
    source_labels: Any,
    target_probs: Any,
    *,
    method: AccuracyMethod,
    source_weights: Any = ...,
    source_X: Any = ...,
    target_X: Any = ...,
    label_shift: LabelShiftResult | LabelShiftEstimator | None = ...,
    score: Literal["negative-entropy", "max-confidence"] = ...,
    random_state: Any = ...,
) -> AccuracyEstimate: ...


@overload
def estimate_accuracy(
    source_probs: Any,
    source_labels: Any,
    target_probs: Any,
    *,
    method: Literal["all"] | Sequence[str] = ...,
    source_weights: Any = ...,
    source_X: Any = ...,
    target_X: Any = ...,
    label_shift: LabelShiftResult | LabelShiftEstimator | None = ...,
    score: Literal["negative-entropy", "max-confidence"] = ...,
    random_state: Any = ...,
) -> AccuracyEstimates: ...


def estimate_accuracy(
    source_probs: Any,
    source_labels: Any,
    target_probs: Any,
    *,
    method: str | Sequence[str] = "all",
    source_weights: Any = None,
    source_X: Any = None,
    target_X: Any = None,
    label_shift: LabelShiftResult | LabelShiftEstimator | None = None,
    score: Literal["negative-entropy", "max-confidence"] = "negative-entropy",
    random_state: Any = None,
) -> AccuracyEstimate | AccuracyEstimates:
    r"""Estimate a model's accuracy on unlabeled target data.

    Parameters
    ----------
    source_probs : array-like of shape (n_source, n_classes)
        Predicted probabilities on a held-out labeled source set.
    source_labels : array-like of shape (n_source,)
        Its labels (integers ``0 .. n_classes - 1``).
    target_probs : array-like of shape (n_target, n_classes)
        Predicted probabilities on the target rows.
    method : str or sequence of str
        One of ``"atc"``, ``"calibrated-confidence"``, ``"importance-weighted"``,
        ``"label-shift"`` (returns one :class:`AccuracyEstimate`), or ``"all"`` / a list
        (returns :class:`AccuracyEstimates`; with ``"all"``, an estimator whose inputs are
        missing is listed in ``skipped``).
    source_weights : array-like of shape (n_source,), optional
        Importance weights :math:`\beta` of the held-out source rows.
    source_X, target_X : array-like, optional
        Features; when ``source_weights`` is not given, an
        :class:`~nndoctor.shift.ImportanceWeighter` (classifier) is fitted on them.
    label_shift : LabelShiftResult or fitted LabelShiftEstimator, optional
        Label-shift weights; by default ``em-bcts`` is fitted on the held-out source set. An
        estimator must take probabilities (``inputs="probs"``); for one fitted on
        log-probabilities or logits pass its :class:`LabelShiftResult` instead.
    score : {"negative-entropy", "max-confidence"}
        ATC's confidence score.
    random_state : int, Generator or None
        Seed for the estimators fitted here.

    Returns
    -------
    AccuracyEstimate or AccuracyEstimates

    Notes
    -----
    With :math:`c_i = 1[\hat y_i = y_i]` on the held-out source set:

    .. math::
        \text{ATC} = \frac1{n_t}\sum_j 1[s(x_j) > t],\quad
        \frac1{n_s}\sum_i 1[s(x_i) > t] = \bar c;\qquad
        \text{IW} = \frac{\sum_i \beta_i c_i}{\sum_i \beta_i};\qquad
        \text{LS} = \frac{\sum_y q(y)\, \mathrm{acc}_y}{\sum_y q(y)}

    where :math:`s` is the negative entropy :math:`\sum_k p_k \log p_k` (or the top
    probability), :math:`\mathrm{acc}_y` the source accuracy on class :math:`y` and
    :math:`q(y) = w(y)\,p(y)`.

    References
    ----------
    Garg et al. (2022), "Leveraging unlabeled data to predict out-of-distribution performance",
    ICLR. Guo et al. (2017), "On calibration of modern neural networks", ICML. Sugiyama,
    Krauledat & Müller (2007), "Covariate shift adaptation by importance weighted cross
    validation", JMLR 8. Lipton et al. (2018), ICML.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> def probs(n, sharp):
    ...     logits = rng.normal(size=(n, 3)) * sharp
    ...     e = np.exp(logits)
    ...     return e / e.sum(axis=1, keepdims=True)
    >>> Ps = probs(500, 3.0)
    >>> ys = np.array([rng.choice(3, p=p) for p in Ps])  # a calibrated model
    >>> Pt = probs(500, 1.0)  # less confident on the target
    >>> res = estimate_accuracy(Ps, ys, Pt, method="atc")
    >>> res.method, bool(res.accuracy < res.source_accuracy)
    ('atc', True)
    >>> [e.method for e in estimate_accuracy(Ps, ys, Pt, random_state=0)]
    ['atc', 'calibrated-confidence', 'label-shift']
    """
    Ps = check_probabilities(source_probs, name="source_probs")
    k = Ps.shape[1]
    ys = _check_class_labels(source_labels, n_rows=Ps.shape[0], n_classes=k)
    Pt = check_probabilities(target_probs, name="target_probs", n_classes=k)
    check_choice(score, ("max-confidence", "negative-entropy"), name="score")
    single = isinstance(method, str) and method != "all"
    if isinstance(method, str):
        methods = list(_METHODS) if method == "all" else [method]
    else:
        methods = list(method)
    if not methods:
        raise InvalidParameterError(
            f"method is empty; pass 'all' or at least one of: {', '.join(_METHODS)}"
        )
    for m in methods:
        check_choice(m, _METHODS, name="method")
    if label_shift is not None and not isinstance(
        label_shift, LabelShiftResult | LabelShiftEstimator
    ):
        raise InvalidParameterError(
            "label_shift must be a LabelShiftResult or a LabelShiftEstimator, got "
            f"{type(label_shift).__name__}; pass LabelShiftEstimator().fit(...).estimate(...)"
        )
    check_random_state(random_state)  # validated up front, whichever methods use it
    explicit = not (isinstance(method, str) and method == "all")
    correct = (Ps.argmax(axis=1) == ys).astype(np.float64)
    out: list[AccuracyEstimate] = []
    skipped: dict[str, str] = {}
    for m in methods:
        if m == "atc":
            out.append(_atc(Ps, correct, Pt, score))
        elif m == "calibrated-confidence":
            out.append(_calibrated_confidence(Ps, ys, correct, Pt))
        elif m == "label-shift":
            if isinstance(label_shift, LabelShiftResult):
                res = label_shift
            else:
                est = label_shift or LabelShiftEstimator(n_bootstrap=0, random_state=random_state)
                if est.inputs != "probs":
                    raise InvalidParameterError(
                        f"label_shift is a LabelShiftEstimator with inputs={est.inputs!r}, but "
                        "estimate_accuracy passes it probabilities; pass its result instead: "
                        "label_shift=est.estimate(target_log_probs)"
                    )
                if not hasattr(est, "n_classes_"):
                    est.fit(Ps, ys)
                res = est.estimate(Pt)
            out.append(_label_shift(Ps, ys, correct, res))
        else:
            weights = _source_weights(source_weights, source_X, target_X, Ps.shape[0], random_state)
            if weights is None:
                reason = "needs source_weights, or source_X and target_X to fit them"
                if explicit:
                    raise InvalidParameterError(f"method 'importance-weighted' {reason}")
                skipped[m] = reason
                continue
            out.append(_importance_weighted(correct, weights))
    if single:
        return out[0]
    return AccuracyEstimates(tuple(out), float(correct.mean()), skipped)


def _source_weights(
    source_weights: Any, source_X: Any, target_X: Any, n: int, random_state: Any
) -> FloatArray | None:
    if source_weights is not None:
        w = check_matrix(source_weights, name="source_weights")
        if w.shape[1] != 1 or w.shape[0] != n:
            raise DataValidationError(
                f"source_weights has shape {w.shape}; pass one weight per held-out source row "
                f"({n} rows)"
            )
        w = w[:, 0]
        if np.any(w < 0) or not np.sum(w) > 0:
            raise DataValidationError(
                "source_weights must be non-negative with a positive sum; pass importance weights"
            )
        return np.asarray(w, dtype=np.float64)
    if source_X is None or target_X is None:
        return None
    Xs = check_matrix(source_X, name="source_X")
    if Xs.shape[0] != n:
        raise DataValidationError(
            f"source_X has {Xs.shape[0]} rows but source_probs has {n}; pass the features of "
            "the same held-out rows"
        )
    return ImportanceWeighter(random_state=random_state).fit(Xs, target_X).weights_
