"""Adapting to concept drift: retrain on a recent window (or update) when the monitor fires.

:func:`adapt_on_drift` replays a labeled stream in time order, test-then-train (prequential):
each batch is first predicted by the current model and scored, then fed to a
:class:`~nndoctor.shift.ShiftMonitor`; when the monitor declares a change, the model is retrained
on the labeled rows that arrived *after* the change (at most ``window`` of them, once at least
``min_labels`` are there) — or, with ``strategy="update"``, updated with ``partial_fit`` on every
labeled batch after the change. A frozen copy of the original model runs alongside, so the
recovery is measured against doing nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from nndoctor._results import ResultMixin
from nndoctor._validation import (
    check_choice,
    check_int,
    check_labels,
    check_matrix,
    check_number,
    check_same_features,
)
from nndoctor.exceptions import DataValidationError, InvalidParameterError
from nndoctor.shift.stream import ChangePoint, MonitorReport, ShiftMonitor

__all__ = ["AdaptationResult", "adapt_on_drift"]

_STRATEGIES = ("update", "window")


@dataclass(frozen=True, slots=True)
class AdaptationResult(ResultMixin):
    """How accuracy evolved with and without adaptation.

    Attributes
    ----------
    strategy : {"window", "update"}
        What was done when the monitor fired.
    accuracy, baseline_accuracy : tuple of float
        Per-batch prequential accuracy of the adapted model and of the frozen original.
    detection_batches : tuple of int
        Batches at which the monitor declared a change.
    retrain_batches : tuple of int
        Batches after which the model was retrained (or first updated).
    accuracy_before : float
        Mean accuracy before the first declared change.
    accuracy_after, baseline_accuracy_after : float
        Mean accuracy of the adapted and of the frozen model after the first retraining.
    recovery : float
        ``accuracy_after - baseline_accuracy_after``: what adapting gained.
    recovered_fraction : float
        :math:`(acc_{after} - acc^{frozen}_{after}) / (acc_{before} - acc^{frozen}_{after})`,
        the share of the lost accuracy won back (NaN when nothing was lost).
    batches_to_recover : int or None
        Batches from the first detection until the adapted model is back within
        ``tolerance`` of ``accuracy_before`` (None if it never is).
    changes : tuple of ChangePoint
        Every change the monitor declared, over all retrainings (``time`` is the batch index).
    monitor : MonitorReport
        The monitor's report since the last retraining (the monitor restarts after each).
    """

    strategy: str
    accuracy: tuple[float, ...]
    baseline_accuracy: tuple[float, ...]
    detection_batches: tuple[int, ...]
    retrain_batches: tuple[int, ...]
    accuracy_before: float
    accuracy_after: float
    baseline_accuracy_after: float
    recovery: float
    recovered_fraction: float
    batches_to_recover: int | None
    changes: tuple[ChangePoint, ...]
    monitor: MonitorReport


def _check_pair(pair: Any, name: str) -> tuple[Any, Any]:
    if isinstance(pair, str | bytes) or not isinstance(pair, tuple | list) or len(pair) != 2:
        raise InvalidParameterError(
            f"{name} must be a pair (X, y), got {type(pair).__name__}"
            + (f" of length {len(pair)}" if isinstance(pair, tuple | list) else "")
            + "; pass (features, labels)"
        )
    return pair[0], pair[1]


def adapt_on_drift(
    estimator: Any,
    reference: tuple[Any, Any],
    batches: Iterable[tuple[Any, Any]],
    *,
    monitor: ShiftMonitor | None = None,
    strategy: str = "window",
    window: int = 1000,
    min_labels: int = 100,
    tolerance: float = 0.05,
) -> AdaptationResult:
    """Replay a labeled stream, retraining when the monitor fires; measure the recovery.

    Parameters
    ----------
    estimator : scikit-learn classifier
        Unfitted template; it is cloned and fitted on ``reference`` (and again on each recent
        window). ``strategy="update"`` needs ``partial_fit``.
    reference : (X, y)
        Labeled data the model starts from.
    batches : iterable of (X, y)
        The stream, in time order.
    monitor : ShiftMonitor, optional
        Defaults to ``ShiftMonitor()``; it is fitted on the reference.
    strategy : {"window", "update"}
        Retrain on the last ``window`` labeled rows since the change, or ``partial_fit`` on
        every labeled batch after it.
    window : int
        Most rows a retraining uses.
    min_labels : int
        Rows that must have arrived after the change before retraining.
    tolerance : float
        Accuracy gap to ``accuracy_before`` that counts as recovered.

    Returns
    -------
    AdaptationResult

    Notes
    -----
    The prequential protocol (Gama et al., 2013, "On evaluating stream learning algorithms",
    Machine Learning 90) scores every batch before its labels are used, so the accuracies are
    honest out-of-sample numbers.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> def batch(flip):
    ...     X = rng.normal(size=(100, 2)); y = (X[:, 0] > 0).astype(int)
    ...     return X, (1 - y if flip else y)      # the answers flip at batch 8
    >>> stream = [batch(t >= 8) for t in range(20)]
    >>> res = adapt_on_drift(LogisticRegression(), batch(False), stream, min_labels=100)
    >>> res.detection_batches[0] in (8, 9), res.recovery > 0.5
    (True, True)
    """
    from sklearn.base import clone

    check_choice(strategy, _STRATEGIES, name="strategy")
    window = check_int(window, name="window", minimum=1)
    min_labels = check_int(min_labels, name="min_labels", minimum=1)
    tolerance = check_number(tolerance, name="tolerance", minimum=0.0)
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict")):
        raise InvalidParameterError(
            f"estimator must be a scikit-learn classifier (with fit and predict), got "
            f"{type(estimator).__name__}; pass e.g. LogisticRegression()"
        )
    if monitor is not None and not isinstance(monitor, ShiftMonitor):
        raise InvalidParameterError(
            f"monitor must be a ShiftMonitor, got {type(monitor).__name__}; pass ShiftMonitor(...)"
        )
    _check_pair(reference, "reference")
    stream: Any = batches  # checked at run time: callers pass anything
    if isinstance(stream, str | bytes) or not isinstance(stream, Iterable):
        raise InvalidParameterError(
            f"batches must be an iterable of (X, y) pairs, got {type(batches).__name__}; "
            "pass a list or a generator of (features, labels)"
        )
    if strategy == "update" and not hasattr(estimator, "partial_fit"):
        raise InvalidParameterError(
            f"strategy='update' needs an estimator with partial_fit; {type(estimator).__name__} "
            "has none; use strategy='window' or an SGDClassifier"
        )
    X_ref = check_matrix(reference[0], name="reference X", min_rows=2)
    y_ref = check_labels(reference[1], name="reference y", n_rows=X_ref.shape[0])
    model = clone(estimator).fit(X_ref, y_ref)
    run = _Replay(estimator, model, clone(estimator).fit(X_ref, y_ref), np.unique(y_ref),
                  monitor if monitor is not None else ShiftMonitor(), strategy, window,
                  min_labels)  # fmt: skip
    run.monitor.fit(X_ref, predictions=run.encode(model.predict(X_ref)), labels=run.encode(y_ref))
    for b, pair in enumerate(batches):
        Xb, yb = _checked_batch(pair, b, X_ref)
        pred = run.test(Xb, yb)
        declared = run.watch(Xb, yb, pred, b)
        run.train(Xb, yb, b, declared)
    if not run.acc:
        raise DataValidationError("batches is empty; pass at least one (X, y) batch to replay")
    before_acc, after, base_after, frac, to_recover = _recovery(
        run.acc, run.base_acc, run.detections, run.retrains, tolerance
    )
    return AdaptationResult(
        strategy=strategy,
        accuracy=tuple(run.acc),
        baseline_accuracy=tuple(run.base_acc),
        detection_batches=tuple(run.detections),
        retrain_batches=tuple(run.retrains),
        accuracy_before=before_acc,
        accuracy_after=after,
        baseline_accuracy_after=base_after,
        recovery=after - base_after,
        recovered_fraction=float(frac),
        batches_to_recover=to_recover,
        changes=tuple(run.changes),
        monitor=run.monitor.report(),
    )


def _checked_batch(
    pair: Any, b: int, X_ref: npt.NDArray[np.floating[Any]]
) -> tuple[npt.NDArray[np.floating[Any]], npt.NDArray[Any]]:
    """Batch ``b`` as features and labels, or an error naming it."""
    Xb_raw, yb_raw = _check_pair(pair, f"batch {b}")
    Xb = check_matrix(Xb_raw, name=f"batch {b} X", min_rows=1)
    check_same_features(X_ref, Xb, names=("reference X", f"batch {b} X"))
    yb = check_labels(yb_raw, name=f"batch {b} y", n_rows=Xb.shape[0])
    return Xb, yb


class _Replay:
    """The prequential replay's state: the models, the monitor, the scores and the buffer."""

    def __init__(
        self, estimator: Any, model: Any, baseline: Any, classes: npt.NDArray[Any],
        monitor: ShiftMonitor, strategy: str, window: int, min_labels: int,
    ) -> None:  # fmt: skip
        self.estimator = estimator
        self.model = model
        self.baseline = baseline
        self.classes = classes
        self.monitor = monitor
        self.strategy = strategy
        self.window = window
        self.min_labels = min_labels
        self.acc: list[float] = []
        self.base_acc: list[float] = []
        self.detections: list[int] = []
        self.retrains: list[int] = []
        self.changes: list[ChangePoint] = []
        self.buffer_X: list[npt.NDArray[np.floating[Any]]] = []
        self.buffer_y: list[npt.NDArray[Any]] = []
        self.waiting = False
        self.adapted = False

    def encode(self, y: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
        """The class indices of ``y`` (unknown labels get the index past the last class)."""
        classes = self.classes
        idx = np.searchsorted(classes, y)
        idx = np.clip(idx, 0, classes.size - 1)
        known = classes[idx] == y
        return np.where(known, idx, classes.size).astype(np.int64)

    def test(self, Xb: npt.NDArray[Any], yb: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Test before training: the accuracy of the current and of the frozen model."""
        pred: npt.NDArray[Any] = self.model.predict(Xb)
        self.acc.append(float(np.mean(pred == yb)))
        self.base_acc.append(float(np.mean(self.baseline.predict(Xb) == yb)))
        return pred

    def watch(self, Xb: npt.NDArray[Any], yb: npt.NDArray[Any], pred: Any, b: int) -> bool:
        """Whether the monitor declares a change at this batch (then a new window starts)."""
        mon = self.monitor
        before = len(mon.report().changes)
        mon.update(Xb, predictions=self.encode(pred), labels=self.encode(yb), time=b)
        now = mon.report().changes
        declared = len(now) > before
        if declared:
            self.changes.extend(now[before:])
            self.detections.append(b)
            self.waiting = True
            self.buffer_X, self.buffer_y = [], []
        return declared

    def train(self, Xb: npt.NDArray[Any], yb: npt.NDArray[Any], b: int, declared: bool) -> None:
        """Whether and how the batch trains the model: update, or retrain on a full window."""
        from sklearn.base import clone

        if self.strategy == "update" and (declared or self.adapted):
            # the batch that revealed the change is the first of the new concept
            self.model.partial_fit(Xb, yb)
            if declared:
                self.retrains.append(b)
                self.adapted = True
                self.waiting = False
            return
        if self.waiting:
            self.buffer_X.append(Xb)
            self.buffer_y.append(yb)
            n_new = sum(x.shape[0] for x in self.buffer_X)
            if n_new >= self.min_labels:
                Xw = np.vstack(self.buffer_X)[-self.window :]
                yw = np.concatenate(self.buffer_y)[-self.window :]
                if np.unique(yw).size >= 2:
                    self.model = clone(self.estimator).fit(Xw, yw)
                    self.monitor.reset(
                        Xw, predictions=self.encode(self.model.predict(Xw)), labels=self.encode(yw)
                    )
                    self.retrains.append(b)
                    self.waiting = False


def _recovery(
    acc: list[float], base_acc: list[float], detections: list[int], retrains: list[int],
    tolerance: float,
) -> tuple[float, float, float, float, int | None]:  # fmt: skip
    """How much adapting won back: accuracy before and after, share recovered, batches taken."""
    n = len(acc)
    first_det = detections[0] if detections else n
    first_fix = retrains[0] + 1 if retrains else n
    before_acc = float(np.mean(acc[:first_det])) if first_det > 0 else math.nan
    after = float(np.mean(acc[first_fix:])) if first_fix < n else math.nan
    base_after = float(np.mean(base_acc[first_fix:])) if first_fix < n else math.nan
    lost = before_acc - base_after
    frac = (after - base_after) / lost if math.isfinite(lost) and lost > 1e-12 else math.nan
    to_recover: int | None = None
    if detections:
        for b in range(first_det, n):
            if acc[b] >= before_acc - tolerance:
                to_recover = b - first_det
                break
    return before_acc, after, base_after, frac, to_recover
