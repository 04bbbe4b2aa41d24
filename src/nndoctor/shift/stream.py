"""Streaming shift monitors: river's drift detectors plus batch tests with error control.

:class:`ShiftMonitor` consumes batches in time order — features, the model's predictions (or
class probabilities) and, when they arrive, the labels — and watches three kinds of signal:

* the **error stream** (needs labels): river's detectors (ADWIN, DDM, EDDM, Page-Hinkley, KSWIN,
  HDDM-A, HDDM-W) fed one 0/1 error per row; a change is declared when ``min_votes`` distinct
  detectors fire within ``vote_window`` rows (a vote keeps any one detector's false alarms out);
* the **per-class prediction rates**: one ADWIN per class on the indicator "predicted class k";
* **batch-level two-sample tests** of each batch against the reference: features (per-feature KS,
  Bonferroni over features), predicted classes (χ²) and labels (χ²). Their family-wise error over
  the whole stream is controlled by alpha-spending: batch t is tested at level
  :math:`\\alpha_t = \\alpha\\,\\gamma_t` with :math:`\\sum_t \\gamma_t \\le 1` — ``"bonferroni"``
  (:math:`\\gamma_t = 1/H` over a horizon of H batches) or ``"pi2"``
  (:math:`\\gamma_t = 6 / (\\pi^2 t^2)`, any horizon).

Then it says **what kind** of change happened: only the error rate moved → concept shift; the
label distribution moved → label shift; inputs or predictions moved without the labels →
covariate shift; inputs moved and the error rose without a label change → mixed.

The detectors are river's (Bifet & Gavaldà 2007; Gama et al. 2004; Baena-García et al. 2006;
Page 1954; Raab et al. 2020; Frías-Blanco et al. 2015); this module only wires and votes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt
from scipy import stats

from nndoctor._results import ResultMixin
from nndoctor._validation import (
    check_choice,
    check_fitted,
    check_int,
    check_labels,
    check_matrix,
    check_unit_interval,
    to_numpy,
)
from nndoctor.exceptions import DataValidationError, InvalidParameterError

__all__ = [
    "DETECTORS",
    "BatchTest",
    "ChangeEvent",
    "ChangePoint",
    "MonitorReport",
    "ShiftMonitor",
]

DetectorName = Literal["adwin", "ddm", "eddm", "page_hinkley", "kswin", "hddm_a", "hddm_w"]
DETECTORS: tuple[str, ...] = tuple(sorted(get_args(DetectorName)))
"""River detectors the monitor can run on the error stream."""
DEFAULT_DETECTORS: tuple[str, ...] = ("adwin", "ddm", "hddm_a", "hddm_w", "page_hinkley")
SignalKind = Literal["none", "covariate", "label", "concept", "mixed"]
_SPENDING = ("bonferroni", "pi2")


def _make_detector(name: str, seed: int | None) -> Any:
    from river import drift
    from river.drift import binary

    if name == "adwin":
        return drift.ADWIN()  # type: ignore[no-untyped-call]  # river: unannotated __init__
    if name == "page_hinkley":
        return drift.PageHinkley(mode="up")
    if name == "kswin":
        return drift.KSWIN(seed=seed)
    if name == "ddm":
        return binary.DDM()
    if name == "eddm":
        return binary.EDDM()
    if name == "hddm_a":
        return binary.HDDMA()  # type: ignore[no-untyped-call]  # river: unannotated __init__
    return binary.HDDMW()  # type: ignore[no-untyped-call]  # river: unannotated __init__


@dataclass(frozen=True, slots=True)
class ChangeEvent(ResultMixin):
    """One detector or test firing.

    Attributes
    ----------
    batch : int
        Index of the batch (0-based, in order of :meth:`ShiftMonitor.update` calls).
    sample : int
        Index of the row (over the whole stream) at which it fired; for batch tests the batch's
        first row.
    time : str or None
        The batch's time label, when one was given.
    signal : str
        ``"error_rate"``, ``"prediction_rate[k]"``, ``"features"``, ``"predictions"`` or
        ``"labels"``.
    detector : str
        The river detector (``"adwin"``, …), ``"vote"`` for the error vote, or the batch test
        (``"ks"``, ``"chi2"``).
    statistic, pvalue, level : float
        For batch tests: the statistic, its p-value and the spent level :math:`\\alpha_t`;
        NaN for river detectors.
    """

    batch: int
    sample: int
    time: str | None
    signal: str
    detector: str
    statistic: float
    pvalue: float
    level: float


@dataclass(frozen=True, slots=True)
class BatchTest(ResultMixin):
    """A batch-level two-sample test against the reference, at its spent level."""

    batch: int
    signal: str
    method: str
    statistic: float
    pvalue: float
    level: float
    rejected: bool


@dataclass(frozen=True, slots=True)
class ChangePoint(ResultMixin):
    """Events grouped into one change, with its kind.

    Attributes
    ----------
    batch, sample : int
        Where the first event of the group fired.
    time : str or None
        Its time label.
    kind : {"covariate", "label", "concept", "mixed"}
        Which shift the signals point to.
    signals : tuple of str
        The signals that fired in the group.
    reason : str
        Why this kind.
    """

    batch: int
    sample: int
    time: str | None
    kind: SignalKind
    signals: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class MonitorReport(ResultMixin):
    """What a :class:`ShiftMonitor` saw.

    Attributes
    ----------
    drift_detected : bool
        Whether any change was declared.
    kind : {"none", "covariate", "label", "concept", "mixed"}
        Kind of the first change (``"none"`` without one).
    changes : tuple of ChangePoint
        Declared changes in time order.
    events : tuple of ChangeEvent
        Every detector firing and rejected batch test.
    batch_tests : tuple of BatchTest
        Every batch-level test run.
    error_rate : tuple of float
        Error rate per batch (NaN where a batch had no labels).
    n_batches, n_samples : int
        Stream length.
    alpha, spending, horizon, detectors, min_votes
        The settings.
    """

    drift_detected: bool
    kind: SignalKind
    changes: tuple[ChangePoint, ...]
    events: tuple[ChangeEvent, ...]
    batch_tests: tuple[BatchTest, ...]
    error_rate: tuple[float, ...]
    n_batches: int
    n_samples: int
    alpha: float
    spending: str
    horizon: int
    detectors: tuple[str, ...]
    min_votes: int


class ShiftMonitor:
    """Watch a deployed classifier's stream for covariate, label and concept shift.

    Parameters
    ----------
    detectors : sequence of str
        River detectors on the error stream, from :data:`DETECTORS`. Default: ADWIN, DDM,
        HDDM-A, HDDM-W and Page-Hinkley (EDDM and KSWIN raise many false alarms on a 0/1 stream
        and are opt-in).
    min_votes : int
        Distinct error detectors that must fire within ``vote_window`` rows to declare a change
        of the error rate.
    vote_window : int
        Rows within which votes count together.
    alpha : float
        Family-wise error level of all batch tests over the stream (horizon).
    spending : {"bonferroni", "pi2"}
        How ``alpha`` is spent over batches (see the module notes).
    horizon : int
        Batches covered by ``"bonferroni"``; after it the spending restarts and the guarantee is
        per horizon.
    prediction_rates : bool
        Run one ADWIN per class on the predicted-class indicators.
    group_window : int
        Events within this many batches of a change's first event belong to that change.
    random_state : int or None
        Seed for KSWIN's sub-sampling.

    Notes
    -----
    Reference data go to :meth:`fit` (features, predictions and labels of data the model is
    known to handle), the stream to :meth:`update` one batch at a time.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> mon = ShiftMonitor(random_state=0).fit(rng.normal(size=(500, 3)),
    ...                                        predictions=rng.integers(0, 2, 500),
    ...                                        labels=rng.integers(0, 2, 500))
    >>> for t in range(30):
    ...     X = rng.normal(size=(100, 3))
    ...     y = rng.integers(0, 2, 100)
    ...     err = rng.random(100) < (0.1 if t < 15 else 0.5)   # the answers change at t = 15
    ...     _ = mon.update(X, predictions=np.where(err, 1 - y, y), labels=y, time=str(t))
    >>> rep = mon.report()
    >>> rep.kind, rep.changes[0].time in {"15", "16", "17"}
    ('concept', True)
    """

    def __init__(
        self,
        *,
        detectors: Sequence[str] = DEFAULT_DETECTORS,
        min_votes: int = 2,
        vote_window: int = 1000,
        alpha: float = 0.05,
        spending: str = "bonferroni",
        horizon: int = 100,
        prediction_rates: bool = True,
        group_window: int = 10,
        random_state: int | None = None,
    ) -> None:
        # a bare string is kept as given (and rejected in fit), not split into letters
        self.detectors: Sequence[str] = (
            detectors if isinstance(detectors, str) else tuple(detectors)
        )
        self.min_votes = min_votes
        self.vote_window = vote_window
        self.alpha = alpha
        self.spending = spending
        self.horizon = horizon
        self.prediction_rates = prediction_rates
        self.group_window = group_window
        self.random_state = random_state

    # ------------------------------------------------------------------ set-up

    def _check_params(self) -> None:
        if isinstance(self.detectors, str):
            raise InvalidParameterError(
                f"detectors must be a list of detector names, got the string "
                f"{self.detectors!r}; pass detectors=[{self.detectors!r}]"
            )
        for name in self.detectors:
            check_choice(name, DETECTORS, name="detector")
        if not self.detectors:
            raise InvalidParameterError(
                f"detectors is empty; pass at least one of: {', '.join(DETECTORS)}"
            )
        check_int(self.min_votes, name="min_votes", minimum=1)
        if self.min_votes > len(set(self.detectors)):
            raise InvalidParameterError(
                f"min_votes={self.min_votes} but only {len(set(self.detectors))} detector(s) "
                "run; lower min_votes or add detectors"
            )
        check_int(self.vote_window, name="vote_window", minimum=1)
        check_unit_interval(self.alpha, name="alpha")
        check_choice(self.spending, _SPENDING, name="spending")
        check_int(self.horizon, name="horizon", minimum=1)
        check_int(self.group_window, name="group_window", minimum=0)

    def fit(
        self,
        X: Any = None,
        *,
        predictions: Any = None,
        labels: Any = None,
    ) -> ShiftMonitor:
        """Store the reference: features, predicted classes (or probabilities) and labels.

        Any of the three may be omitted; the batch test of a signal runs only when the
        reference has it. Returns ``self``.
        """
        self._check_params()
        self.reference_X_ = None if X is None else check_matrix(X, name="reference X", min_rows=2)
        n = None if self.reference_X_ is None else self.reference_X_.shape[0]
        self.reference_predictions_ = (
            None if predictions is None else self._classes(predictions, "reference predictions", n)
        )
        self.reference_labels_ = (
            None if labels is None else self._classes(labels, "reference labels", n)
        )
        self._reset_state()
        return self

    def _reset_state(self) -> None:
        self._detectors = {name: _make_detector(name, self.random_state) for name in self.detectors}
        self._rate_detectors: dict[int, Any] = {}
        self._votes: dict[str, int] = {}
        self._events: list[ChangeEvent] = []
        self._tests: list[BatchTest] = []
        self._error_rate: list[float] = []
        self._batch_times: list[str | None] = []
        self._batch_start: list[int] = []
        self._rejecting: dict[str, bool] = {}
        self.n_batches_ = 0
        self.n_samples_ = 0
        self._spend_index = 0

    def reset(self, X: Any = None, *, predictions: Any = None, labels: Any = None) -> ShiftMonitor:
        """Start afresh with a new reference (e.g. after retraining); forgets the history."""
        return self.fit(X, predictions=predictions, labels=labels)

    @staticmethod
    def _classes(values: Any, name: str, n_rows: int | None) -> npt.NDArray[np.int64]:
        arr = to_numpy(values, name=name)
        if arr.ndim == 2 and arr.shape[1] > 1:
            if not np.all(np.isfinite(arr)):
                raise DataValidationError(f"{name} hold NaN or infinity; pass probabilities")
            arr = arr.argmax(axis=1)
        arr = check_labels(arr, name=name, n_rows=n_rows)
        if arr.dtype.kind not in "iu" and not (
            arr.dtype.kind == "f" and np.all(np.equal(np.mod(arr, 1), 0))
        ):
            raise DataValidationError(
                f"{name} must be integer class indices (or a matrix of class probabilities); "
                "encode the classes as 0..K-1 first"
            )
        out = arr.astype(np.int64)
        if out.size and out.min() < 0:
            raise DataValidationError(f"{name} holds negative class indices; use 0..K-1")
        return out

    # ------------------------------------------------------------------ streaming

    def _level(self) -> float:
        self._spend_index += 1
        t = self._spend_index
        if self.spending == "bonferroni":
            return self.alpha / self.horizon
        return self.alpha * 6.0 / (math.pi**2 * t**2)

    def update(
        self,
        X: Any = None,
        *,
        predictions: Any = None,
        labels: Any = None,
        time: Any = None,
    ) -> tuple[ChangeEvent, ...]:
        """Consume one batch (rows in time order); return the events it raised.

        Parameters
        ----------
        X : array-like of shape (n, d), optional
            The batch's features.
        predictions : array-like of shape (n,) or (n, K), optional
            Predicted classes, or class probabilities.
        labels : array-like of shape (n,), optional
            True classes, when they have arrived; NaN marks rows whose label has not (those
            rows count for the features and predictions, not for the error stream).
        time : optional
            A label for the batch (shown in events).
        """
        self._check_fitted()
        batch = self.n_batches_
        start = self.n_samples_
        t_label = None if time is None else str(time)
        Xb = None if X is None else check_matrix(X, name="X", min_rows=1)
        n = None if Xb is None else Xb.shape[0]
        pred = None if predictions is None else self._classes(predictions, "predictions", n)
        n = n if n is not None else (None if pred is None else pred.shape[0])
        known: npt.NDArray[np.bool_] | None = None
        if labels is not None:
            raw = to_numpy(labels, name="labels")
            if raw.dtype.kind == "f" and raw.ndim == 1 and np.isnan(raw).any():
                known = ~np.isnan(raw)  # labels that have not arrived yet
                if n is not None and raw.shape[0] != n:
                    raise DataValidationError(
                        f"labels has {raw.shape[0]} entries but the batch has {n} rows; pass "
                        "one entry per row (NaN where the label is unknown)"
                    )
                raw = raw[known]
            lab = self._classes(raw, "labels", None if known is not None else n)
        else:
            lab = None
        n_rows = next(
            (a.shape[0] for a in (Xb, pred) if a is not None),
            0 if lab is None else (lab.shape[0] if known is None else known.shape[0]),
        )
        if n_rows == 0:
            raise DataValidationError("update() got an empty batch; pass X, predictions or labels")
        if (
            Xb is not None
            and self.reference_X_ is not None
            and Xb.shape[1] != (self.reference_X_.shape[1])
        ):
            raise DataValidationError(
                f"X has {Xb.shape[1]} features but the reference has "
                f"{self.reference_X_.shape[1]}; pass the same columns"
            )
        new: list[ChangeEvent] = []

        # per-row detectors
        if pred is not None and lab is not None and lab.size:
            errors = ((pred if known is None else pred[known]) != lab).astype(np.int64)
            self._error_rate.append(float(errors.mean()))
            new.extend(self._feed_errors(errors, batch, start, t_label))
        else:
            self._error_rate.append(float("nan"))
        if pred is not None and self.prediction_rates:
            new.extend(self._feed_rates(pred, batch, start, t_label))

        # batch tests, each at its share of the spent level
        tests: list[tuple[str, str, float, float]] = []
        if Xb is not None and self.reference_X_ is not None:
            tests.append(("features", "ks", *self._ks(self.reference_X_, Xb)))
        if pred is not None and self.reference_predictions_ is not None:
            tests.append(("predictions", "chi2", *_chi2(self.reference_predictions_, pred)))
        if lab is not None and lab.size and self.reference_labels_ is not None:
            tests.append(("labels", "chi2", *_chi2(self.reference_labels_, lab)))
        if tests:
            level = self._level() / len(tests)
            for signal, method, stat, p in tests:
                rejected = bool(p <= level)
                self._tests.append(BatchTest(batch, signal, method, stat, p, level, rejected))
                if rejected and not self._rejecting.get(signal, False):
                    # latched: a shift against the fixed reference persists, report it once
                    new.append(ChangeEvent(batch, start, t_label, signal, method, stat, p, level))
                    self._rejecting[signal] = True

        self._events.extend(new)
        self._batch_times.append(t_label)
        self._batch_start.append(start)
        self.n_batches_ += 1
        self.n_samples_ += n_rows
        return tuple(new)

    def _feed_errors(
        self, errors: npt.NDArray[np.int64], batch: int, start: int, t_label: str | None
    ) -> list[ChangeEvent]:
        nan = float("nan")
        out: list[ChangeEvent] = []
        for i, e in enumerate(errors.tolist()):
            idx = start + i
            for name, det in self._detectors.items():
                det.update(e)
                if det.drift_detected:
                    out.append(ChangeEvent(batch, idx, t_label, "error_rate", name, nan, nan, nan))
                    self._votes[name] = idx
            recent = {k for k, v in self._votes.items() if idx - v < self.vote_window}
            if len(recent) >= self.min_votes:
                out.append(ChangeEvent(batch, idx, t_label, "error_rate", "vote", nan, nan, nan))
                self._votes.clear()
        return out

    def _feed_rates(
        self, pred: npt.NDArray[np.int64], batch: int, start: int, t_label: str | None
    ) -> list[ChangeEvent]:
        from river import drift

        nan = float("nan")
        out: list[ChangeEvent] = []
        k_max = int(pred.max()) + 1
        if self.reference_predictions_ is not None and self.reference_predictions_.size:
            k_max = max(k_max, int(self.reference_predictions_.max()) + 1)
        for k in range(k_max):
            det = self._rate_detectors.get(k)
            if det is None:
                det = drift.ADWIN()  # type: ignore[no-untyped-call]  # river: unannotated
                self._rate_detectors[k] = det
            fired = False
            for i, v in enumerate((pred == k).astype(np.int64).tolist()):
                det.update(v)
                if det.drift_detected and not fired:
                    fired = True
                    sig = f"prediction_rate[{k}]"
                    out.append(ChangeEvent(batch, start + i, t_label, sig, "adwin", nan, nan, nan))
        return out

    @staticmethod
    def _ks(
        ref: npt.NDArray[np.floating[Any]], X: npt.NDArray[np.floating[Any]]
    ) -> tuple[float, float]:
        if X.shape[0] < 2:
            return float("nan"), 1.0
        res = stats.ks_2samp(ref, X, axis=0)
        pvals = np.atleast_1d(np.asarray(res.pvalue, dtype=np.float64))
        stat = np.atleast_1d(np.asarray(res.statistic, dtype=np.float64))
        j = int(np.argmin(pvals))
        return float(stat[j]), float(min(1.0, pvals[j] * pvals.size))

    # ------------------------------------------------------------------ results

    def _check_fitted(self) -> None:
        check_fitted(self, "n_batches_", fit_call="fit(reference_X, predictions=..., labels=...)")

    @property
    def drift_detected(self) -> bool:
        """Whether any change has been declared so far (read-only)."""
        self._check_fitted()
        return bool(self._declared_events())

    def _declared_events(self) -> list[ChangeEvent]:
        """Events that declare a change: the error vote, rate ADWINs and rejected batch tests."""
        return [
            e
            for e in self._events
            if e.signal != "error_rate" or e.detector == "vote" or self.min_votes == 1
        ]

    def report(self) -> MonitorReport:
        """Summarise the stream so far: declared changes with their kind, every event and test."""
        self._check_fitted()
        declared = self._declared_events()
        changes: list[ChangePoint] = []
        i = 0
        while i < len(declared):
            first = declared[i]
            group = [e for e in declared[i:] if e.batch - first.batch <= self.group_window]
            i += len(group)
            signals = tuple(dict.fromkeys(_family(e.signal) for e in group))
            kind, reason = _kind_of(set(signals))
            changes.append(
                ChangePoint(first.batch, first.sample, first.time, kind, signals, reason)
            )
        return MonitorReport(
            drift_detected=bool(changes),
            kind=changes[0].kind if changes else "none",
            changes=tuple(changes),
            events=tuple(self._events),
            batch_tests=tuple(self._tests),
            error_rate=tuple(self._error_rate),
            n_batches=self.n_batches_,
            n_samples=self.n_samples_,
            alpha=float(self.alpha),
            spending=self.spending,
            horizon=int(self.horizon),
            detectors=tuple(self.detectors),
            min_votes=int(self.min_votes),
        )


def _family(signal: str) -> str:
    return "predictions" if signal.startswith("prediction_rate") else signal


def _kind_of(signals: set[str]) -> tuple[SignalKind, str]:
    inputs = signals & {"features", "predictions"}
    if "labels" in signals:
        return "label", "the distribution of the labels changed"
    if inputs and "error_rate" in signals:
        return "mixed", (
            "the inputs moved and the error rate rose; the rise may come from the new inputs "
            "(covariate) or from changed answers (concept)"
        )
    if inputs:
        return "covariate", "the inputs (or the model's predictions) moved; the labels did not"
    return "concept", "only the error rate rose: the same inputs now get other answers"


def _chi2(ref: npt.NDArray[np.int64], new: npt.NDArray[np.int64]) -> tuple[float, float]:
    """Pearson's χ² test of homogeneity of two class-count vectors (empty classes dropped)."""
    k = int(max(ref.max(initial=0), new.max(initial=0))) + 1
    table = np.vstack([np.bincount(ref, minlength=k), np.bincount(new, minlength=k)])
    table = table[:, table.sum(axis=0) > 0].astype(np.float64)
    if table.shape[1] < 2 or new.size < 2:
        return 0.0, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    stat = float(np.sum((table - expected) ** 2 / expected))
    return stat, float(stats.chi2.sf(stat, table.shape[1] - 1))
