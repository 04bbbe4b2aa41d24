r"""How well does the model do on the target, when the target has no labels?

Five estimators, each valid under a different assumption, which every result states:

* ``"confidence-based"`` — confidence-based performance estimation (CBPE, NannyML): calibrate
  the model's scores on the labeled held-out source set by isotonic regression, then take the
  expected confusion matrix of the model's own predictions on the target. Gives accuracy and,
  for binary problems, precision, recall, F1 and ROC AUC, each with an interval.
* ``"atc"`` — average thresholded confidence (Garg et al., 2022): pick the score threshold
  :math:`t` at which the share of held-out source rows scoring above it equals the source
  accuracy; the estimate is the share of target rows scoring above :math:`t`.
* ``"calibrated-confidence"`` — the mean probability of the predicted class on the target after
  temperature scaling on the held-out source set (Guo et al., 2017; "average confidence").
* ``"importance-weighted"`` — the source accuracy reweighted by importance weights
  :math:`\beta(x)` (covariate shift).
* ``"label-shift"`` — the source per-class accuracies reweighted by the label-shift weights
  :math:`w(y)` (label shift).

Every estimator estimates the accuracy of the predictions the model really makes: the argmax by
default, or the labels passed as ``source_pred`` / ``target_pred``, or (binary) the class-1
probability compared with ``threshold``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args, overload

import numpy as np
import numpy.typing as npt

from nndoctor._results import ResultMixin
from nndoctor._validation import (
    check_choice,
    check_class_indices,
    check_int,
    check_matrix,
    check_probabilities,
    check_random_state,
    check_unit_interval,
    to_numpy,
)
from nndoctor.exceptions import DataValidationError, InvalidParameterError
from nndoctor.shift._common import canonical_order
from nndoctor.shift._engines import is_dask
from nndoctor.shift.covariate import ImportanceWeighter, effective_sample_size
from nndoctor.shift.label import (
    LabelShiftEstimator,
    LabelShiftResult,
    _apply_scaling,
    _check_class_labels,
    _fit_scaling,
    _log,
)

__all__ = ["AccuracyEstimate", "AccuracyEstimates", "MetricEstimate", "estimate_accuracy"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
AccuracyMethod = Literal[
    "atc", "calibrated-confidence", "confidence-based", "importance-weighted", "label-shift"
]
_METHODS = tuple(sorted(get_args(AccuracyMethod)))
BINARY_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
_Draw = Callable[[np.random.Generator, int], FloatArray]  # draws of per-row event probabilities
_DRAWS_PER_BATCH = 2_000_000  # simulated rows held in memory at once (draws x target rows)

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
    "confidence-based": (
        "no concept shift: the probability of the label given the model's score, calibrated "
        "on the held-out source set, is the same on the target (holds under covariate shift "
        "within the source's support; fails under concept shift and under label shift)"
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
class MetricEstimate(ResultMixin):
    """One estimated metric of the model's predictions on the target, with its interval.

    Attributes
    ----------
    name : str
        ``"accuracy"``, ``"precision"``, ``"recall"``, ``"f1"`` or ``"roc_auc"``.
    value : float
        Estimated value on the target.
    ci_low, ci_high : float
        Interval for the value the target's (unseen) labels would give; NaN where the method
        has none.
    source_value : float
        The value on the held-out source set, from its labels.
    """

    name: str
    value: float
    ci_low: float
    ci_high: float
    source_value: float


@dataclass(frozen=True, slots=True)
class AccuracyEstimate(ResultMixin):
    """An estimate of the target accuracy without target labels.

    Attributes
    ----------
    accuracy : float
        Estimated target accuracy of the model's predictions.
    method : str
        Estimator used.
    assumption : str
        What must hold for the estimate to be right.
    source_accuracy : float
        Accuracy on the held-out source set (the reference).
    details : dict
        Method-specific numbers (threshold, temperature, ESS, weights, calibration).
    ci_low, ci_high : float
        Interval for the accuracy the target's labels would give (NaN where the method has
        none); ``interval`` says how it was made.
    metrics : dict of str to MetricEstimate
        Every metric the method estimates, ``"accuracy"`` included; for binary problems
        ``confidence-based`` and ``calibrated-confidence`` add precision, recall, F1 and ROC AUC
        (class 1 is the positive class).
    confidence : float
        Nominal coverage of the intervals.
    interval : str
        How the intervals were made ("" where there are none).
    n_target : int
        Target rows.
    predictions : str
        Which predictions are scored: ``"argmax"``, ``"given"`` or ``"threshold 0.65"``.
    """

    accuracy: float
    method: str
    assumption: str
    source_accuracy: float
    details: dict[str, Any] = field(default_factory=dict)
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    metrics: dict[str, MetricEstimate] = field(default_factory=dict)
    confidence: float = 0.95
    interval: str = ""
    n_target: int = 0
    predictions: str = "argmax"


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


# --------------------------------------------------------------------------------------------
# shared pieces


@dataclass(frozen=True, slots=True)
class _Problem:
    """The validated inputs every estimator reads."""

    Ps: FloatArray
    ys: IntArray
    Pt: FloatArray
    pred_s: IntArray
    pred_t: IntArray
    correct: FloatArray
    predictions: str
    confidence: float
    n_bootstrap: int

    @property
    def binary(self) -> bool:
        return bool(self.Ps.shape[1] == 2)


def _neg_entropy(P: FloatArray) -> FloatArray:
    return np.asarray(np.sum(P * np.log(np.maximum(P, 1e-300)), axis=1), dtype=np.float64)


def _binary_counts(y: FloatArray, pred: IntArray) -> tuple[Any, Any, Any, Any]:
    """(TP, FP, FN, TN) of predictions ``pred`` against labels ``y`` (last axis: rows).

    ``y`` may hold probabilities (then the counts are expected counts) and may carry leading
    axes (one row of counts per draw).
    """
    pos = pred == 1
    tp = np.sum(y * pos, axis=-1)
    fn = np.sum(y * ~pos, axis=-1)
    n_pos = int(pos.sum())
    n = pred.size
    return tp, n_pos - tp, fn, (n - n_pos) - fn


def _ratio(num: Any, den: Any) -> Any:
    """num / den, NaN where den = 0."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _metrics_from_counts(tp: Any, fp: Any, fn: Any, tn: Any) -> dict[str, Any]:
    n = tp + fp + fn + tn
    return {
        "accuracy": _ratio(tp + tn, n),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def _tie_ranks(score: FloatArray) -> FloatArray:
    """Ranks 1..n of ``score``, ties given their average rank."""
    order = np.argsort(score, kind="stable")
    s = score[order]
    first = np.r_[True, s[1:] != s[:-1]]
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], s.size]
    avg = (starts + ends + 1) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(score.size)
    ranks[order] = avg[group]
    return ranks


def _auc(score: FloatArray, y: FloatArray) -> float:
    """ROC AUC of ``score`` for 0/1 labels ``y`` (Mann-Whitney, ties count 1/2)."""
    n1 = float(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float((np.dot(_tie_ranks(score), y) - n1 * (n1 + 1) / 2) / (n1 * n0))


def _expected_auc(score: FloatArray, p: FloatArray) -> float:
    r"""Expected ROC AUC when row :math:`i` is positive with probability :math:`p_i`.

    The ratio of expectations :math:`\sum_{i \ne j} p_i (1 - p_j) K(s_i, s_j) /
    \sum_{i \ne j} p_i (1 - p_j)`, :math:`K = 1` for :math:`s_i > s_j`, ``1/2`` for a tie.
    """
    order = np.argsort(score, kind="stable")
    s, q = score[order], p[order]
    neg = 1.0 - q
    first = np.r_[True, s[1:] != s[:-1]]
    group = np.cumsum(first) - 1
    neg_in_group = np.bincount(group, weights=neg)
    below = np.r_[0.0, np.cumsum(neg_in_group)[:-1]]  # negatives' mass strictly below
    num = float(np.sum(q * (below[group] + 0.5 * (neg_in_group[group] - neg))))
    den = float(q.sum() * neg.sum() - np.sum(q * neg))
    return num / den if den > 0 else float("nan")


def _metric(name: str, value: float, low: float, high: float, source: float) -> MetricEstimate:
    return MetricEstimate(name, float(value), float(low), float(high), float(source))


def _source_metrics(prob: _Problem) -> dict[str, float]:
    """Realized metrics on the held-out source set (binary: all five)."""
    out = {"accuracy": float(prob.correct.mean())}
    if prob.binary:
        y = prob.ys.astype(np.float64)
        counts = _binary_counts(y, prob.pred_s)
        out.update({k: float(v) for k, v in _metrics_from_counts(*counts).items()})
        out["roc_auc"] = _auc(prob.Ps[:, 1], y)
    return out


def _accuracy_only(
    prob: _Problem, method: str, acc: float, details: dict[str, Any],
    low: float = float("nan"), high: float = float("nan"), interval: str = "",
) -> AccuracyEstimate:  # fmt: skip
    src = float(prob.correct.mean())
    return AccuracyEstimate(
        float(acc), method, ASSUMPTIONS[method], src, details, float(low), float(high),
        {"accuracy": _metric("accuracy", acc, low, high, src)}, prob.confidence, interval,
        int(prob.Pt.shape[0]), prob.predictions,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# isotonic calibration (the confidence-based estimator)


@dataclass(frozen=True, slots=True)
class _Isotonic:
    """A monotone map score -> P(event) fitted by isotonic regression (pool adjacent violators).

    ``knots``: the distinct source scores (ascending); ``values``: the fitted probability at
    each; ``block``: which pooled block each knot belongs to; ``events`` / ``counts``: each
    block's number of events and of rows. Between knots the map is linear, outside it is flat.
    """

    knots: FloatArray
    values: FloatArray
    block: IntArray
    events: FloatArray
    counts: FloatArray

    @classmethod
    def fit(cls, score: FloatArray, event: FloatArray) -> _Isotonic:
        """Fit on source scores and 0/1 events; tied scores are pooled first."""
        from sklearn.isotonic import isotonic_regression

        knots, inverse = np.unique(score, return_inverse=True)
        counts = np.bincount(inverse).astype(np.float64)
        events = np.bincount(inverse, weights=event)
        values = np.asarray(
            isotonic_regression(events / counts, sample_weight=counts, y_min=0.0, y_max=1.0),
            dtype=np.float64,
        )
        block = np.cumsum(np.r_[True, values[1:] != values[:-1]]) - 1
        return cls(
            knots,
            values,
            block.astype(np.int64),
            np.asarray(np.bincount(block, weights=events), dtype=np.float64),
            np.asarray(np.bincount(block, weights=counts), dtype=np.float64),
        )

    def locate(self, score: FloatArray) -> tuple[IntArray, FloatArray]:
        """Left knot and interpolation weight of each score (for vectorized draws)."""
        m = self.knots.size
        if m == 1:
            return np.zeros(score.size, dtype=np.int64), np.zeros(score.size)
        lo = np.clip(np.searchsorted(self.knots, score, side="right") - 1, 0, m - 2)
        gap = self.knots[lo + 1] - self.knots[lo]
        w = np.clip((score - self.knots[lo]) / gap, 0.0, 1.0)
        return lo.astype(np.int64), w

    def predict(self, score: FloatArray) -> FloatArray:
        return np.asarray(np.interp(score, self.knots, self.values), dtype=np.float64)

    def draw_values(self, rng: np.random.Generator, n: int) -> FloatArray:
        """``n`` draws of the knot values from each block's Jeffreys posterior (shape n, knots).

        Block :math:`b` with :math:`e_b` events in :math:`n_b` rows draws
        :math:`\\mathrm{Beta}(e_b + 1/2,\\ n_b - e_b + 1/2)`: the calibration's own sampling
        error, independent across blocks (it ignores that the blocks were chosen from the data).
        """
        a = self.events + 0.5
        b = self.counts - self.events + 0.5
        draws = rng.beta(a, b, size=(n, a.size))
        return np.asarray(draws[:, self.block], dtype=np.float64)


def _interp_draws(values: FloatArray, lo: IntArray, w: FloatArray) -> FloatArray:
    """Row-wise ``np.interp`` for each draw of the knot values (shape draws, rows)."""
    if values.shape[1] == 1:
        return np.repeat(values, lo.size, axis=1)
    return np.asarray(values[:, lo] * (1.0 - w) + values[:, lo + 1] * w, dtype=np.float64)


def _simulate(
    prob: _Problem,
    p_event: FloatArray,
    draw_p: _Draw | None,
    metrics: Sequence[str],
    rng: np.random.Generator,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of each metric over simulated target labels.

    Each draw takes event probabilities from ``draw_p(rng, n)`` (the calibration's uncertainty;
    ``None``: ``p_event`` itself), then Bernoulli events for every target row, and computes the
    realized metric. Binary: the event is "label 1"; multiclass: "the prediction is right".
    """
    B = prob.n_bootstrap
    if B == 0:
        return {m: (float("nan"), float("nan")) for m in metrics}
    n = p_event.size
    per = max(1, min(B, _DRAWS_PER_BATCH // max(n, 1)))
    ranks = _tie_ranks(prob.Pt[:, 1]) if "roc_auc" in metrics else None
    values: dict[str, list[FloatArray]] = {m: [] for m in metrics}
    done = 0
    while done < B:
        b = min(per, B - done)
        p = np.broadcast_to(p_event, (b, n)) if draw_p is None else draw_p(rng, b)
        y = (rng.random((b, n)) < p).astype(np.float64)
        if prob.binary:
            got = _metrics_from_counts(*_binary_counts(y, prob.pred_t))
            if ranks is not None:
                n1 = y.sum(axis=1)
                n0 = n - n1
                got["roc_auc"] = _ratio(y @ ranks - n1 * (n1 + 1) / 2, n1 * n0)
        else:
            got = {"accuracy": y.mean(axis=1)}
        for m in metrics:
            values[m].append(np.asarray(got[m], dtype=np.float64))
        done += b
    tail = 100 * (1 - prob.confidence) / 2
    out = {}
    for m in metrics:
        v = np.concatenate(values[m])
        v = v[np.isfinite(v)]
        if v.size < 0.9 * B:
            out[m] = (float("nan"), float("nan"))
        else:
            lo, hi = np.percentile(v, [tail, 100 - tail])
            out[m] = (float(lo), float(hi))
    return out


def _with_metrics(
    prob: _Problem,
    method: str,
    p_event: FloatArray,
    draw_p: _Draw | None,
    details: dict[str, Any],
    interval: str,
    rng: np.random.Generator,
) -> AccuracyEstimate:
    """An estimate from per-row event probabilities on the target (see :func:`_simulate`)."""
    source = _source_metrics(prob)
    if prob.binary:
        point = {
            k: float(v)
            for k, v in _metrics_from_counts(*_binary_counts(p_event, prob.pred_t)).items()
        }
        point["roc_auc"] = _expected_auc(prob.Pt[:, 1], p_event)
    else:
        point = {"accuracy": float(p_event.mean())}
    names = [m for m in BINARY_METRICS if m in point]
    ci = _simulate(prob, p_event, draw_p, names, rng)
    metrics = {m: _metric(m, point[m], *ci[m], source[m]) for m in names}
    acc = metrics["accuracy"]
    return AccuracyEstimate(
        acc.value, method, ASSUMPTIONS[method], source["accuracy"], details, acc.ci_low,
        acc.ci_high, metrics, prob.confidence, interval if prob.n_bootstrap else "",
        int(prob.Pt.shape[0]), prob.predictions,
    )  # fmt: skip


def _confidence_based(prob: _Problem, rng: np.random.Generator) -> AccuracyEstimate:
    """CBPE: isotonic calibration on the source, expected confusion matrix on the target."""
    if prob.binary:
        s_src, s_tgt = prob.Ps[:, 1], prob.Pt[:, 1]
        event = prob.ys.astype(np.float64)  # calibrate P(y = 1 | score)
    else:
        rows_s = np.arange(prob.Ps.shape[0])
        s_src = prob.Ps[rows_s, prob.pred_s]  # the predicted class's probability
        s_tgt = prob.Pt[np.arange(prob.Pt.shape[0]), prob.pred_t]
        event = prob.correct  # calibrate P(prediction right | its probability)
    iso = _Isotonic.fit(s_src, event)
    p = iso.predict(s_tgt)
    lo, w = iso.locate(s_tgt)

    def draw(rng: np.random.Generator, n: int) -> FloatArray:
        return _interp_draws(iso.draw_values(rng, n), lo, w)

    details = {
        "calibration": "isotonic",
        "calibrated_event": "label 1" if prob.binary else "prediction correct",
        "n_blocks": int(iso.counts.size),
        "calibration_brier_source": float(np.mean((iso.predict(s_src) - event) ** 2)),
    }
    interval = (
        f"{prob.n_bootstrap} simulated label sets: calibration drawn from each isotonic "
        "block's Beta posterior, then a Bernoulli label per target row; percentile interval"
    )
    return _with_metrics(prob, "confidence-based", p, draw, details, interval, rng)


def _atc(prob: _Problem, score: str) -> AccuracyEstimate:
    """ATC: the share of target rows above the source threshold that matches its accuracy."""
    Ps, Pt = prob.Ps, prob.Pt
    acc_s = float(prob.correct.mean())
    s_src = _neg_entropy(Ps) if score == "negative-entropy" else Ps.max(axis=1)
    s_tgt = _neg_entropy(Pt) if score == "negative-entropy" else Pt.max(axis=1)
    # threshold t with mean(s_src > t) = acc_s
    t = float(np.quantile(s_src, 1.0 - acc_s)) if acc_s < 1 else float(np.min(s_src) - 1.0)
    return _accuracy_only(prob, "atc", float(np.mean(s_tgt > t)), {"threshold": t, "score": score})


def _calibrated_confidence(prob: _Problem, rng: np.random.Generator) -> AccuracyEstimate:
    """The mean temperature-scaled probability of the predicted class on the target."""
    theta = _fit_scaling(_log(prob.Ps), prob.ys, bias=False)
    Pcal = _apply_scaling(_log(prob.Pt), theta)
    p = Pcal[:, 1] if prob.binary else Pcal[np.arange(Pcal.shape[0]), prob.pred_t]
    interval = (
        f"{prob.n_bootstrap} simulated label sets, a Bernoulli label per target row from the "
        "temperature-scaled probabilities (the temperature's own error is not included); "
        "percentile interval"
    )
    details = {"temperature": float(np.exp(-theta[0]))}
    return _with_metrics(prob, "calibrated-confidence", p, None, details, interval, rng)


def _importance_weighted(prob: _Problem, weights: FloatArray) -> AccuracyEstimate:
    """The source accuracy reweighted by importance weights, with a delta-method interval."""
    correct = prob.correct
    ess = effective_sample_size(weights)
    acc = float(np.sum(weights * correct) / np.sum(weights))
    # delta-method standard error of a ratio estimator
    se = float(np.sqrt(np.sum((weights * (correct - acc)) ** 2)) / np.sum(weights))
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + prob.confidence / 2))
    return _accuracy_only(
        prob, "importance-weighted", acc,
        {"effective_sample_size": ess, "standard_error": se},
        max(0.0, acc - z * se), min(1.0, acc + z * se),
        "normal interval from the delta-method standard error of the weighted mean "
        "(weights taken as fixed)",
    )  # fmt: skip


def _label_shift(prob: _Problem, result: LabelShiftResult) -> AccuracyEstimate:
    """The source per-class accuracies averaged with the target's estimated class shares."""
    k = prob.Ps.shape[1]
    ys, correct = prob.ys, prob.correct
    if result.weights.size != k:
        raise DataValidationError(
            f"label_shift has {result.weights.size} classes but the probabilities have {k}; "
            "pass a result from the same model"
        )
    per_class = np.array([correct[ys == c].mean() for c in range(k)])
    freq = np.bincount(ys, minlength=k) / ys.size
    q = result.weights * freq
    acc = float(np.sum(q * per_class) / np.sum(q))
    return _accuracy_only(
        prob,
        "label-shift",
        acc,
        {
            "per_class_accuracy": per_class,
            "label_weights": result.weights,
            "label_method": result.method,
        },
    )


# --------------------------------------------------------------------------------------------
# input checks


def _as_probs(probs: Any, *, name: str, n_classes: int | None = None) -> FloatArray:
    """Probabilities as (n, k); a 1-D array is the class-1 probability of a binary model."""
    arr = to_numpy(probs, name=name)
    if arr.ndim == 1:
        p = check_matrix(arr, name=name)[:, 0]
        if np.any(p < -1e-4) or np.any(p > 1 + 1e-4):
            raise DataValidationError(
                f"{name} holds values outside [0, 1]; pass the class-1 probabilities"
            )
        p = np.clip(p, 0.0, 1.0)
        arr = np.c_[1.0 - p, p]
    return check_probabilities(arr, name=name, n_classes=n_classes)


def _predictions(
    Ps: FloatArray, Pt: FloatArray, source_pred: Any, target_pred: Any, threshold: Any
) -> tuple[IntArray, IntArray, str]:
    """The predictions scored (given, thresholded or argmax) and how they were made."""
    k = Ps.shape[1]
    if (source_pred is None) != (target_pred is None):
        raise InvalidParameterError(
            "pass both source_pred and target_pred (the model's predicted labels on the "
            "held-out source rows and on the target rows), or neither"
        )
    if threshold is not None:
        if source_pred is not None:
            raise InvalidParameterError(
                "pass either threshold or source_pred/target_pred, not both; the threshold "
                "makes the predictions from the class-1 probabilities"
            )
        if k != 2:
            raise InvalidParameterError(
                f"threshold applies to binary problems; the probabilities have {k} classes. "
                "Pass source_pred and target_pred instead"
            )
        t = check_unit_interval(threshold, name="threshold")
        pred_s = (Ps[:, 1] >= t).astype(np.int64)
        pred_t = (Pt[:, 1] >= t).astype(np.int64)
        return pred_s, pred_t, f"threshold {t:g}"
    if source_pred is not None:
        pred_s = check_class_indices(
            source_pred,
            name="source_pred",
            n_rows=Ps.shape[0],
            n_classes=k,
            what="predicted class indices",
        )
        pred_t = check_class_indices(
            target_pred,
            name="target_pred",
            n_rows=Pt.shape[0],
            n_classes=k,
            what="predicted class indices",
        )
        return pred_s, pred_t, "given"
    return Ps.argmax(axis=1), Pt.argmax(axis=1), "argmax"


# --------------------------------------------------------------------------------------------
# the public function


@overload
def estimate_accuracy(
    source_probs: Any,
    source_labels: Any,
    target_probs: Any,
    *,
    method: AccuracyMethod,
    source_pred: Any = ...,
    target_pred: Any = ...,
    threshold: float | None = ...,
    source_weights: Any = ...,
    source_X: Any = ...,
    target_X: Any = ...,
    label_shift: LabelShiftResult | LabelShiftEstimator | None = ...,
    score: Literal["negative-entropy", "max-confidence"] = ...,
    confidence: float = ...,
    n_bootstrap: int = ...,
    random_state: Any = ...,
) -> AccuracyEstimate: ...


@overload
def estimate_accuracy(
    source_probs: Any,
    source_labels: Any,
    target_probs: Any,
    *,
    method: Literal["all"] | Sequence[str] = ...,
    source_pred: Any = ...,
    target_pred: Any = ...,
    threshold: float | None = ...,
    source_weights: Any = ...,
    source_X: Any = ...,
    target_X: Any = ...,
    label_shift: LabelShiftResult | LabelShiftEstimator | None = ...,
    score: Literal["negative-entropy", "max-confidence"] = ...,
    confidence: float = ...,
    n_bootstrap: int = ...,
    random_state: Any = ...,
) -> AccuracyEstimates: ...


def estimate_accuracy(
    source_probs: Any,
    source_labels: Any,
    target_probs: Any,
    *,
    method: str | Sequence[str] = "all",
    source_pred: Any = None,
    target_pred: Any = None,
    threshold: float | None = None,
    source_weights: Any = None,
    source_X: Any = None,
    target_X: Any = None,
    label_shift: LabelShiftResult | LabelShiftEstimator | None = None,
    score: Literal["negative-entropy", "max-confidence"] = "negative-entropy",
    confidence: float = 0.95,
    n_bootstrap: int = 200,
    random_state: Any = None,
) -> AccuracyEstimate | AccuracyEstimates:
    r"""Estimate a model's accuracy (and, binary, precision, recall, F1, ROC AUC) without labels.

    Parameters
    ----------
    source_probs : array-like of shape (n_source, n_classes) or (n_source,)
        Predicted probabilities on a held-out labeled source set (the reference); a 1-D array
        is the class-1 probability of a binary model.
    source_labels : array-like of shape (n_source,)
        Its labels (integers ``0 .. n_classes - 1``).
    target_probs : array-like of shape (n_target, n_classes) or (n_target,)
        Predicted probabilities on the target rows.
    method : str or sequence of str
        One of ``"confidence-based"``, ``"atc"``, ``"calibrated-confidence"``,
        ``"importance-weighted"``, ``"label-shift"`` (returns one :class:`AccuracyEstimate`),
        or ``"all"`` / a list (returns :class:`AccuracyEstimates`; with ``"all"``, an estimator
        whose inputs are missing is listed in ``skipped``). ``"confidence-based"`` is the one
        to trust unless the target's class proportions moved (:func:`~nndoctor.shift.diagnose`
        uses it unless it diagnoses label shift).
    source_pred, target_pred : array-like of shape (n_source,) and (n_target,), optional
        The model's predicted labels on the held-out source rows and on the target rows, when
        they are not the argmax of the probabilities; the estimate is the accuracy of these
        predictions. Pass both or neither.
    threshold : float, optional
        Binary problems: the model predicts class 1 when its class-1 probability is
        ``>= threshold`` (instead of the argmax, i.e. 0.5).
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
    confidence : float
        Nominal coverage of the intervals (default 0.95).
    n_bootstrap : int
        Simulated label sets behind the intervals of ``confidence-based`` and
        ``calibrated-confidence`` (0: no intervals, NaN).
    random_state : int, Generator or None
        Seed for the estimators fitted here and for the simulated label sets.

    Returns
    -------
    AccuracyEstimate or AccuracyEstimates

    Notes
    -----
    **On Dask** (any of the three data arguments a ``dask.array`` / ``dask.dataframe``
    collection; the held-out probabilities and labels then with the same partitions): the
    held-out set comes to the client (at most ``CALIBRATION_MAX_ROWS`` = 200,000 rows of it; a
    larger one is sampled uniformly, seeded by ``random_state``, and the calibration and the
    source metrics come from the sample), and each target partition is reduced to
    ``4 n_bootstrap + 3`` sums, of the calibrated event probabilities :math:`p_j` and, per
    calibration draw, of :math:`p_j` and :math:`p_j(1-p_j)` over the rows predicted 1 and 0
    (binary problems add a histogram for ROC AUC, below).
    ``confidence-based``, ``calibrated-confidence``, ``atc`` (an exact count) and
    ``label-shift`` (:meth:`LabelShiftEstimator.estimate` on Dask) run; their point estimates
    equal the in-memory ones (to float rounding). The interval draws each label count from
    the normal law with those sums as mean and variance (the in-memory estimator draws a
    Bernoulli label per row: the same law up to the normal approximation of a
    Poisson-binomial sum). ROC AUC (binary) comes from sums of :math:`p`, :math:`1-p` and
    :math:`p(1-p)` in 16,384 equal-width bins of the class-1 probability (pairs within a bin
    count 1/2), within ``details["roc_auc_binning_error"]`` of the in-memory value; it has no
    interval on Dask. ``importance-weighted`` runs with ``source_weights`` (the held-out set
    not sampled); ``source_pred`` / ``target_pred`` do not run on Dask (``threshold`` does).

    **Confidence-based** (after NannyML's "Confidence-based Performance Estimation", CBPE,
    https://nannyml.readthedocs.io/en/stable/how_it_works/performance_estimation.html).
    Isotonic regression fitted on the held-out source set maps the model's score to a
    calibrated probability :math:`\hat p(s)` — for binary problems of class 1 given the
    class-1 probability, otherwise of "the prediction is right" given the predicted class's
    probability. Isotonic regression pools tied scores and needs no parametric form, so
    probabilities rounded to 0.01 or saturated at exactly 0 and 1 calibrate as well as any
    (temperature scaling cannot fit those). With :math:`p_j = \hat p(s_j)` on the target and
    predictions :math:`\hat y_j`, the expected confusion matrix is

    .. math::
        \mathrm{TP} = \sum_{\hat y_j = 1} p_j,\quad \mathrm{FP} = \sum_{\hat y_j = 1} (1 - p_j),
        \quad \mathrm{FN} = \sum_{\hat y_j = 0} p_j,\quad \mathrm{TN} = \sum_{\hat y_j = 0}
        (1 - p_j)

    and accuracy, precision, recall and F1 follow from it; ROC AUC is the expected share of
    correctly ordered (positive, negative) pairs of the model's scores,
    :math:`\sum_{i \ne j} p_i (1 - p_j) K(s_i, s_j) / \sum_{i \ne j} p_i (1 - p_j)`. The
    interval is for the value the target's labels would give: each of ``n_bootstrap`` draws
    takes every isotonic block's probability from its Beta posterior (the calibration's
    error, from the size of the held-out set) and then a Bernoulli label per target row (the
    sampling error of the target itself, Σ p(1 - p)); the interval is the draws' percentiles.
    NannyML instead reports the spread of the metric over reference chunks of the same size.

    **The others**, with :math:`c_i = 1[\hat y_i = y_i]` on the held-out source set:

    .. math::
        \text{ATC} = \frac1{n_t}\sum_j 1[s(x_j) > t],\quad
        \frac1{n_s}\sum_i 1[s(x_i) > t] = \bar c;\qquad
        \text{IW} = \frac{\sum_i \beta_i c_i}{\sum_i \beta_i};\qquad
        \text{LS} = \frac{\sum_y q(y)\, \mathrm{acc}_y}{\sum_y q(y)}

    where :math:`s` is the negative entropy :math:`\sum_k p_k \log p_k` (or the top
    probability), :math:`\mathrm{acc}_y` the source accuracy on class :math:`y` and
    :math:`q(y) = w(y)\,p(y)`. ``calibrated-confidence`` is the mean temperature-scaled
    probability of the predicted class (binary: the expected confusion matrix as above, from
    the temperature-scaled probabilities). Each result's ``assumption`` says when it is right;
    only ``label-shift`` is right under label shift, and none under concept shift.

    References
    ----------
    NannyML, "Confidence-based Performance Estimation (CBPE)", NannyML documentation (2022-).
    Zadrozny & Elkan (2002), "Transforming classifier scores into accurate multiclass
    probability estimates", KDD. Garg et al. (2022), "Leveraging unlabeled data to predict
    out-of-distribution performance", ICLR. Guo et al. (2017), "On calibration of modern
    neural networks", ICML. Sugiyama, Krauledat & Müller (2007), "Covariate shift adaptation by
    importance weighted cross validation", JMLR 8. Lipton et al. (2018), ICML.

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
    >>> res = estimate_accuracy(Ps, ys, Pt, method="confidence-based", random_state=0)
    >>> res.method, bool(res.accuracy < res.source_accuracy), bool(res.ci_low < res.ci_high)
    ('confidence-based', True, True)
    >>> [e.method for e in estimate_accuracy(Ps, ys, Pt, random_state=0)]
    ['atc', 'calibrated-confidence', 'confidence-based', 'label-shift']

    A binary model that predicts class 1 at probability 0.65, given as class-1 probabilities:

    >>> p_s, p_t = rng.random(2000), rng.random(2000) ** 0.7
    >>> y_s = (rng.random(2000) < p_s).astype(int)
    >>> est = estimate_accuracy(p_s, y_s, p_t, method="confidence-based", threshold=0.65,
    ...                         random_state=0)
    >>> sorted(est.metrics), est.predictions
    (['accuracy', 'f1', 'precision', 'recall', 'roc_auc'], 'threshold 0.65')
    """
    if any(is_dask(x) for x in (source_probs, source_labels, target_probs)):
        return _estimate_accuracy_dask(
            source_probs, source_labels, target_probs, method=method, source_pred=source_pred,
            target_pred=target_pred, threshold=threshold, source_weights=source_weights,
            source_X=source_X, target_X=target_X, label_shift=label_shift, score=score,
            confidence=confidence, n_bootstrap=n_bootstrap, random_state=random_state,
        )  # fmt: skip
    Ps, ys, Pt = _check_data(source_probs, source_labels, target_probs)
    confidence, n_bootstrap, methods = _check_options(
        score, confidence, n_bootstrap, method, label_shift
    )
    rng = check_random_state(random_state)  # validated up front, whichever methods use it
    pred_s, pred_t, predictions = _predictions(Ps, Pt, source_pred, target_pred, threshold)
    # the rows in an order fixed by their content (with what travels with them), so that the
    # bootstraps and draws, made from random_state by position, do not depend on their order
    order_s = canonical_order(Ps, ys, pred_s, *_same_rows(Ps.shape[0], source_weights, source_X))
    order_t = canonical_order(Pt, pred_t)
    Ps, ys, pred_s = Ps[order_s], ys[order_s], pred_s[order_s]
    Pt, pred_t = Pt[order_t], pred_t[order_t]
    correct = (pred_s == ys).astype(np.float64)
    prob = _Problem(Ps, ys, Pt, pred_s, pred_t, correct, predictions, confidence, n_bootstrap)
    explicit = not (isinstance(method, str) and method == "all")
    out, skipped = _run_estimators(
        prob, methods, explicit, rng, score=score, label_shift=label_shift,
        source_weights=source_weights, source_X=source_X, target_X=target_X,
        random_state=random_state, order_s=order_s,
    )  # fmt: skip
    if isinstance(method, str) and method != "all":
        return out[0]
    return AccuracyEstimates(tuple(out), float(correct.mean()), skipped)


def _check_data(
    source_probs: Any, source_labels: Any, target_probs: Any
) -> tuple[FloatArray, IntArray, FloatArray]:
    """The held-out probabilities and labels and the target probabilities, checked."""
    Ps = _as_probs(source_probs, name="source_probs")
    k = Ps.shape[1]
    ys = _check_class_labels(source_labels, n_rows=Ps.shape[0], n_classes=k)
    Pt = _as_probs(target_probs, name="target_probs", n_classes=k)
    return Ps, ys, Pt


def _check_options(
    score: str,
    confidence: float,
    n_bootstrap: int,
    method: str | Sequence[str],
    label_shift: Any,
) -> tuple[float, int, list[str]]:
    """The options that every estimator shares, checked: (confidence, n_bootstrap, methods)."""
    check_choice(score, ("max-confidence", "negative-entropy"), name="score")
    confidence = check_unit_interval(confidence, name="confidence")
    n_bootstrap = check_int(n_bootstrap, name="n_bootstrap", minimum=0)
    methods = _check_methods(method)
    if label_shift is not None and not isinstance(
        label_shift, LabelShiftResult | LabelShiftEstimator
    ):
        raise InvalidParameterError(
            "label_shift must be a LabelShiftResult or a LabelShiftEstimator, got "
            f"{type(label_shift).__name__}; pass LabelShiftEstimator().fit(...).estimate(...)"
        )
    return confidence, n_bootstrap, methods


def _run_estimators(
    prob: _Problem,
    methods: list[str],
    explicit: bool,
    rng: np.random.Generator,
    *,
    score: str,
    label_shift: LabelShiftResult | LabelShiftEstimator | None,
    source_weights: Any,
    source_X: Any,
    target_X: Any,
    random_state: Any,
    order_s: IntArray,
) -> tuple[list[AccuracyEstimate], dict[str, str]]:
    """Run each requested estimator in turn: the estimates, and those skipped with why
    (``order_s``: the order of ``prob``'s source rows among those the weights are given for)."""
    out: list[AccuracyEstimate] = []
    skipped: dict[str, str] = {}
    for m in methods:
        if m == "confidence-based":
            out.append(_confidence_based(prob, rng))
        elif m == "atc":
            out.append(_atc(prob, score))
        elif m == "calibrated-confidence":
            out.append(_calibrated_confidence(prob, rng))
        elif m == "label-shift":
            res = _label_shift_result(label_shift, prob.Ps, prob.ys, prob.Pt, random_state)
            out.append(_label_shift(prob, res))
        else:
            n = prob.Ps.shape[0]
            weights = _source_weights(source_weights, source_X, target_X, n, random_state)
            if weights is None:
                reason = "needs source_weights, or source_X and target_X to fit them"
                if explicit:
                    raise InvalidParameterError(f"method 'importance-weighted' {reason}")
                skipped[m] = reason
                continue
            out.append(_importance_weighted(prob, weights[order_s]))
    return out, skipped


def _same_rows(n: int, *parts: Any) -> list[Any]:
    """The parts given with one row per source row (the others are left to their own checks,
    which say what is wrong with them)."""
    out = []
    for part in parts:
        shape = getattr(part, "shape", None)
        rows = shape[0] if shape is not None and len(shape) else None
        if rows is None and isinstance(part, list | tuple):
            rows = len(part)
        out.append(part if rows == n else None)
    return out


def _check_methods(method: str | Sequence[str]) -> list[str]:
    """The estimators to run: ``"all"``, one name or a list of names, each checked."""
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
    return methods


def _label_shift_result(
    label_shift: LabelShiftResult | LabelShiftEstimator | None,
    Ps: FloatArray,
    ys: IntArray,
    Pt: FloatArray,
    random_state: Any,
) -> LabelShiftResult:
    """The label-shift weights given, or ``em-bcts`` (or the estimator given) fitted here."""
    if isinstance(label_shift, LabelShiftResult):
        return label_shift
    est = label_shift or LabelShiftEstimator(n_bootstrap=0, random_state=random_state)
    if est.inputs != "probs":
        raise InvalidParameterError(
            f"label_shift is a LabelShiftEstimator with inputs={est.inputs!r}, but "
            "estimate_accuracy passes it probabilities; pass its result instead: "
            "label_shift=est.estimate(target_log_probs)"
        )
    if not hasattr(est, "n_classes_"):
        est.fit(Ps, ys)
    return est.estimate(Pt)


def _source_weights(
    source_weights: Any, source_X: Any, target_X: Any, n: int, random_state: Any
) -> FloatArray | None:
    """The importance weights given, or fitted on the features; ``None`` without either."""
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


# --------------------------------------------------------------------------------------------
# Dask: the target as per-partition sums


_DASK_METHODS = (
    "atc", "calibrated-confidence", "confidence-based", "importance-weighted", "label-shift",
)  # fmt: skip
_CALIBRATION_DRAWS = " of the calibration (each isotonic block from its Beta posterior)"


def _dask_predict(P: FloatArray, threshold: float | None) -> IntArray:
    """The predictions on a partition, as :func:`_predictions` makes them (argmax/threshold)."""
    if threshold is not None:
        return (P[:, 1] >= threshold).astype(np.int64)
    return np.asarray(P.argmax(axis=1), dtype=np.int64)


def _event_probabilities(
    part: Any, k: int, threshold: float | None, calibration: _Isotonic | FloatArray
) -> tuple[FloatArray, IntArray, FloatArray, FloatArray]:
    """A target partition's calibrated event probabilities, predictions, scores and P."""
    P = _as_probs(part, name="target_probs", n_classes=k)
    pred = _dask_predict(P, threshold)
    if isinstance(calibration, _Isotonic):
        score = P[:, 1] if k == 2 else P[np.arange(P.shape[0]), pred]
        return calibration.predict(score), pred, score, P
    Pcal = _apply_scaling(_log(P), calibration)
    p = Pcal[:, 1] if k == 2 else Pcal[np.arange(Pcal.shape[0]), pred]
    return p, pred, p, P


#: Equal-width bins of the class-1 probability for the expected ROC AUC on Dask.
AUC_BINS = 16384


def _auc_histogram(score: FloatArray, p: FloatArray) -> FloatArray:
    """Per score bin: sums of p, of 1 - p and of p(1 - p) (3 x ``AUC_BINS``)."""
    b = np.minimum((np.clip(score, 0.0, 1.0) * AUC_BINS).astype(np.int64), AUC_BINS - 1)
    return np.vstack(
        [np.bincount(b, weights=w, minlength=AUC_BINS) for w in (p, 1.0 - p, p * (1.0 - p))]
    )


def _auc_from_histogram(hist: FloatArray) -> tuple[float, float]:
    r"""The expected ROC AUC from binned sums, and the bound on its binning error.

    Pairs in different bins are ordered exactly; a pair in one bin counts 1/2 (exact for tied
    scores), so the error is at most half their share: with :math:`A_b, N_b, D_b` the bin's
    sums of :math:`p`, :math:`1-p` and :math:`p(1-p)`, the within-bin mass is
    :math:`A_b N_b - D_b` and the bound :math:`\frac12 \sum_b (A_b N_b - D_b) / \text{den}`.
    """
    A, N, D = hist
    den = float(A.sum() * N.sum() - D.sum())
    if not den > 0:
        return float("nan"), float("nan")
    below = np.concatenate(([0.0], np.cumsum(N)[:-1]))
    within = A * N - D
    num = float(np.sum(A * below) + 0.5 * np.sum(within))
    return num / den, 0.5 * float(np.sum(within)) / den


def _event_sums(
    part: Any,
    k: int,
    threshold: float | None,
    calibration: _Isotonic | FloatArray,
    draws: FloatArray | None,
) -> tuple[Any, ...]:
    """Sums of a target partition for the expected confusion matrix and its interval.

    Returns ``(Σ_{ŷ=1} p, Σ_{ŷ=0} p, #{ŷ=1}, S1, V1, S0, V0, H)``: for each row of ``draws``
    (the isotonic knot values of one draw of the calibration; ``None``: the fitted ``p``
    itself), the sums of :math:`p` and of :math:`p(1-p)` over rows predicted 1 and predicted 0
    (multiclass: all rows count as "1", the event being "the prediction is right"); binary:
    ``H`` the score histogram of :func:`_auc_histogram` (multiclass: 0).
    """
    p, pred, score, P = _event_probabilities(part, k, threshold, calibration)
    pos = pred == 1 if k == 2 else np.ones(p.size, dtype=bool)
    B = 1 if draws is None else draws.shape[0]
    sums = np.zeros((4, B))
    step = max(1, _DRAWS_PER_BATCH // B)
    iso = calibration if isinstance(calibration, _Isotonic) else None
    for i in range(0, p.size, step):
        rows = slice(i, i + step)
        if draws is None:
            P_draw = p[None, rows]
        elif iso is not None:
            lo, w = iso.locate(score[rows])
            P_draw = _interp_draws(draws, lo, w)
        else:  # pragma: no cover - draws come with the isotonic map only
            raise InvalidParameterError("internal error: calibration draws need the isotonic map")
        var = P_draw * (1.0 - P_draw)
        up = pos[rows]
        sums += np.vstack(
            [P_draw[:, up].sum(1), var[:, up].sum(1), P_draw[:, ~up].sum(1), var[:, ~up].sum(1)]
        )
    hist = _auc_histogram(P[:, 1], p) if k == 2 else np.zeros(())
    return (float(np.sum(p[pos])), float(np.sum(p[~pos])), int(pos.sum()), *sums, hist)


def _above_threshold(part: Any, k: int, score: str, t: float) -> tuple[int]:
    """ATC on a target partition: how many rows score above the threshold ``t``."""
    P = _as_probs(part, name="target_probs", n_classes=k)
    s = _neg_entropy(P) if score == "negative-entropy" else P.max(axis=1)
    return (int(np.sum(s > t)),)


def _dask_estimate(
    prob: _Problem,
    method: str,
    target: Any,
    threshold: float | None,
    calibration: _Isotonic | FloatArray,
    draws: FloatArray | None,
    details: dict[str, Any],
    rng: np.random.Generator,
) -> AccuracyEstimate:
    r"""An estimate from the target's event sums (:func:`_event_sums`), with normal draws.

    The point estimate is the in-memory one (the same sums, added per partition). The
    interval: per draw, the number of events among the target rows predicted 1 (and 0) is
    drawn from the normal law with the sums' mean :math:`\sum p` and variance
    :math:`\sum p(1-p)` (the Poisson-binomial law of a Bernoulli label per row, which the
    in-memory estimator draws row by row), clipped to its range. ROC AUC: from binned sums
    (:func:`_auc_from_histogram`, with its error bound in ``details``), without an interval.
    """
    from nndoctor.shift._dask_models import partition_sums

    k = prob.Ps.shape[1]
    n, tp, fn, n_pos, S1, V1, S0, V0, hist = partition_sums(
        _event_sums, (target,), ("target_probs",), (k, threshold, calibration, draws)
    )
    source = _source_metrics(prob)
    n_neg = n - n_pos
    if prob.binary:
        point = {
            kk: float(v) for kk, v in _metrics_from_counts(tp, n_pos - tp, fn, n_neg - fn).items()
        }
        point["roc_auc"], details["roc_auc_binning_error"] = _auc_from_histogram(hist)
    else:
        point = {"accuracy": float(tp / n)}
    names = [m for m in BINARY_METRICS if m in point]
    B = prob.n_bootstrap
    ci = {m: (float("nan"), float("nan")) for m in names}
    if B > 0:
        pick = rng.integers(0, S1.size, size=B)  # one row per draw (a fixed p: the only row)
        e1 = np.clip(rng.normal(S1[pick], np.sqrt(V1[pick])), 0.0, n_pos)
        e0 = np.clip(rng.normal(S0[pick], np.sqrt(V0[pick])), 0.0, n_neg)
        got = (
            _metrics_from_counts(e1, n_pos - e1, e0, n_neg - e0)
            if prob.binary
            else {"accuracy": e1 / n}
        )
        tail = 100 * (1 - prob.confidence) / 2
        for m in names:
            if m == "roc_auc":
                continue
            v = np.asarray(got[m], dtype=np.float64)
            v = v[np.isfinite(v)]
            if v.size >= 0.9 * B:
                lo, hi = np.percentile(v, [tail, 100 - tail])
                ci[m] = (float(lo), float(hi))
    metrics = {m: _metric(m, point[m], *ci[m], source[m]) for m in names}
    acc = metrics["accuracy"]
    interval = (
        f"{B} draws{_CALIBRATION_DRAWS if draws is not None else ''}; "
        "per draw the target's count of right predictions (binary: of label 1 among each "
        "predicted class) normal with the per-partition sums of p and p(1 - p) as mean and "
        "variance, clipped to its range; percentile interval (Dask; no ROC AUC interval)"
    )
    return AccuracyEstimate(
        acc.value, method, ASSUMPTIONS[method], source["accuracy"], details, acc.ci_low,
        acc.ci_high, metrics, prob.confidence, interval if B else "", int(n), prob.predictions,
    )  # fmt: skip


def _dask_source(
    source_probs: Any, source_labels: Any, random_state: Any
) -> tuple[FloatArray, IntArray, int]:
    """The held-out rows on the client: all of them, or a seeded sample when there are many."""
    from nndoctor.shift._dask_models import CALIBRATION_MAX_ROWS, collect_rows, partition_sums

    if not (is_dask(source_probs) or is_dask(source_labels)):
        return np.asarray(source_probs), np.asarray(source_labels), int(np.shape(source_labels)[0])
    data, names = (source_probs, source_labels), ("source_probs", "source_labels")
    (n,) = partition_sums(_no_sums, data, names)
    seed = int(check_random_state(random_state).integers(0, 2**63 - 1))
    P, y = collect_rows(data, names, fraction=min(1.0, CALIBRATION_MAX_ROWS / n), seed=seed)
    return P, y, int(n)


def _no_sums(*parts: Any) -> tuple[()]:
    """Nothing but the row count (which :func:`partition_sums` adds itself)."""
    del parts
    return ()


def _dask_count(target: Any) -> tuple[int]:
    """The target's row count (one pass)."""
    from nndoctor.shift._dask_models import partition_sums

    (n,) = partition_sums(_no_sums, (target,), ("target_probs",))
    return (int(n),)


def _dask_confidence_based(
    prob: _Problem, target: Any, threshold: float | None, rng: np.random.Generator
) -> AccuracyEstimate:
    """CBPE on Dask: the isotonic map fitted on the client, the target's sums per partition."""
    Ps, pred_s = prob.Ps, prob.pred_s
    event = prob.ys.astype(np.float64) if prob.binary else prob.correct
    s_src = Ps[:, 1] if prob.binary else Ps[np.arange(Ps.shape[0]), pred_s]
    iso = _Isotonic.fit(s_src, event)
    draws = iso.draw_values(rng, prob.n_bootstrap) if prob.n_bootstrap else None
    details = {
        "calibration": "isotonic",
        "calibrated_event": "label 1" if prob.binary else "prediction correct",
        "n_blocks": int(iso.counts.size),
        "calibration_brier_source": float(np.mean((iso.predict(s_src) - event) ** 2)),
    }
    return _dask_estimate(prob, "confidence-based", target, threshold, iso, draws, details, rng)


def _dask_atc(prob: _Problem, target: Any, score: str) -> AccuracyEstimate:
    """ATC on Dask: the threshold from the held-out rows, the target's count above it."""
    from nndoctor.shift._dask_models import partition_sums

    Ps = prob.Ps
    s_src = _neg_entropy(Ps) if score == "negative-entropy" else Ps.max(axis=1)
    acc_s = float(prob.correct.mean())
    thr = float(np.quantile(s_src, 1.0 - acc_s)) if acc_s < 1 else float(np.min(s_src) - 1.0)
    args = (Ps.shape[1], score, thr)
    n, above = partition_sums(_above_threshold, (target,), ("target_probs",), args)
    est = _accuracy_only(prob, "atc", above / n, {"threshold": thr, "score": score})
    return replace(est, n_target=int(n))


def _dask_label_shift(
    prob: _Problem,
    target: Any,
    label_shift: LabelShiftResult | LabelShiftEstimator | None,
    random_state: Any,
) -> AccuracyEstimate:
    """Label-shift accuracy on Dask: the weights from :meth:`LabelShiftEstimator.estimate`."""
    if isinstance(label_shift, LabelShiftResult):
        res = label_shift
    else:
        ls = label_shift or LabelShiftEstimator(n_bootstrap=0, random_state=random_state)
        if not hasattr(ls, "n_classes_"):
            ls.fit(prob.Ps, prob.ys)
        res = ls.estimate(target)
    return replace(_label_shift(prob, res), n_target=int(res.n_target))


def _dask_weights_refusal(source_weights: Any, n_source: int, n_held: int) -> str:
    """Why ``importance-weighted`` cannot run on Dask ("" when it can)."""
    if source_weights is None:
        return (
            "needs source_weights on Dask inputs (fitting an ImportanceWeighter on source_X "
            "and target_X does not run on Dask)"
        )
    if n_held < n_source:
        return (
            f"needs every held-out row on the client, but {n_source} rows were sampled down to "
            f"{n_held}; pass a held-out set of at most CALIBRATION_MAX_ROWS rows"
        )
    return ""


def _estimate_accuracy_dask(
    source_probs: Any,
    source_labels: Any,
    target_probs: Any,
    *,
    method: str | Sequence[str],
    source_pred: Any,
    target_pred: Any,
    threshold: float | None,
    source_weights: Any,
    source_X: Any,
    target_X: Any,
    label_shift: LabelShiftResult | LabelShiftEstimator | None,
    score: str,
    confidence: float,
    n_bootstrap: int,
    random_state: Any,
) -> AccuracyEstimate | AccuracyEstimates:
    """:func:`estimate_accuracy` with Dask collections (the target's rows stay on the workers).

    The held-out set comes to the client (all rows up to
    ``nndoctor.shift._dask_models.CALIBRATION_MAX_ROWS``, otherwise a seeded uniform sample of
    about that many, on which the calibrations and the source metrics are computed); the
    target is reduced per partition to a few sums (:func:`_event_sums`: ``4 B + 3`` numbers
    for ``B = n_bootstrap`` calibration draws, and for binary problems ``3 x AUC_BINS`` sums
    for ROC AUC). ``confidence-based``, ``calibrated-confidence``,
    ``atc`` and ``label-shift`` run; the point estimates equal the in-memory ones (ATC exactly,
    the others to float rounding), the intervals use a normal law for the target's label
    counts (:func:`_dask_estimate`), ROC AUC is binned (a stated bound, no interval).
    ``importance-weighted`` runs with ``source_weights`` (all held-out rows on the client);
    given predictions (``source_pred`` / ``target_pred``) do not run on Dask.
    """
    confidence, n_bootstrap, methods = _check_options(
        score, confidence, n_bootstrap, method, label_shift
    )
    rng = check_random_state(random_state)
    if source_pred is not None or target_pred is not None:
        raise InvalidParameterError(
            "source_pred / target_pred are not taken with Dask inputs; pass threshold (binary) "
            "or leave them out (argmax), or pass in-memory data"
        )
    explicit = not (isinstance(method, str) and method == "all")
    refused = [m for m in methods if m not in _DASK_METHODS]
    if refused and explicit:
        raise InvalidParameterError(
            f"method(s) {refused} do not run on Dask inputs; choose from {list(_DASK_METHODS)}, "
            "or pass in-memory data"
        )
    P_src, y_src, n_source = _dask_source(source_probs, source_labels, random_state)
    Ps = _as_probs(P_src, name="source_probs")
    k = Ps.shape[1]
    ys = _check_class_labels(y_src, n_rows=Ps.shape[0], n_classes=k)
    pred_s, _, predictions = _predictions(Ps, Ps, None, None, threshold)
    # the held-out rows in the canonical order of the in-memory path (the same sums, so the
    # same estimates to the last digit)
    order_s = canonical_order(Ps, ys, pred_s, *_same_rows(Ps.shape[0], source_weights, None))
    Ps, ys, pred_s = Ps[order_s], ys[order_s], pred_s[order_s]
    t = None if threshold is None else float(threshold)
    correct = (pred_s == ys).astype(np.float64)
    empty = np.empty((0, k))
    prob = _Problem(Ps, ys, empty, pred_s, pred_s[:0], correct, predictions, confidence,
                    n_bootstrap)  # fmt: skip
    target = target_probs
    out: list[AccuracyEstimate] = []
    skipped = {m: "does not run on Dask inputs" for m in refused}
    for m in methods:
        if m == "confidence-based":
            out.append(_dask_confidence_based(prob, target, t, rng))
        elif m == "calibrated-confidence":
            theta = _fit_scaling(_log(Ps), ys, bias=False)
            details = {"temperature": float(np.exp(-theta[0]))}
            out.append(_dask_estimate(prob, m, target, t, theta, None, details, rng))
        elif m == "atc":
            out.append(_dask_atc(prob, target, score))
        elif m == "label-shift":
            out.append(_dask_label_shift(prob, target, label_shift, random_state))
        elif m == "importance-weighted":
            reason = _dask_weights_refusal(source_weights, n_source, Ps.shape[0])
            if reason:
                if explicit:
                    raise InvalidParameterError(f"method 'importance-weighted' {reason}")
                skipped[m] = reason
                continue
            weights = _source_weights(source_weights, None, None, Ps.shape[0], random_state)
            if weights is None:  # pragma: no cover - the refusal covers it
                continue
            (n_target,) = _dask_count(target)
            out.append(replace(_importance_weighted(prob, weights[order_s]), n_target=n_target))
    if isinstance(method, str) and method != "all":
        return out[0]
    return AccuracyEstimates(tuple(out), float(correct.mean()), skipped)
