"""ShiftMonitor: false alarms on stationary streams, delay and kind on step changes, spending."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

from nndoctor.exceptions import DataValidationError, InvalidParameterError
from nndoctor.shift import ShiftMonitor, adapt_on_drift
from nndoctor.shift._simulate import DriftStream, make_river_stream, make_stream

N_BATCHES, BATCH, CHANGE = 30, 100, 15


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with threadpool_limits(1):
        yield


def _run(kind: str, seed: int, **options: object) -> tuple[ShiftMonitor, list[int]]:
    (Xr, yr), batches = make_stream(
        kind, n_batches=N_BATCHES, batch_size=BATCH, change_at=CHANGE, random_state=seed
    )
    model = LogisticRegression().fit(Xr, yr)
    mon = ShiftMonitor(random_state=seed, **options).fit(  # type: ignore[arg-type]
        Xr, predictions=model.predict(Xr), labels=yr
    )
    for t, (X, y) in enumerate(batches):
        mon.update(X, predictions=model.predict_proba(X), labels=y, time=t)
    return mon, [c.batch for c in mon.report().changes]


def test_false_alarms_on_stationary_streams() -> None:
    """Stated bound: P(any alarm in 3,000 stationary rows) <= 0.10 (bench: 0.0x over 100 runs).

    With 12 streams we allow at most 2 streams with an alarm (P(>= 3 | p = 0.1) ≈ 0.11, and the
    measured rate is far below 0.1, so this does not flake).
    """
    alarms = sum(bool(_run("none", seed)[1]) for seed in range(12))
    assert alarms <= 2


@pytest.mark.parametrize("kind", ["concept", "covariate", "label"])
def test_step_change_is_found_fast_and_named(kind: str) -> None:
    """Stated bounds: detected within 300 rows (3 batches) and the kind right in >= 5 of 6."""
    right = fast = 0
    for seed in range(6):
        mon, _ = _run(kind, seed)
        changes = mon.report().changes
        assert changes, f"{kind}: no change found (seed {seed})"
        first = changes[0]
        fast += CHANGE <= first.batch <= CHANGE + 3
        right += first.kind == kind
    assert fast >= 5
    assert right >= 5


def test_error_only_stream_and_votes() -> None:
    """Predictions and labels only: the vote of river detectors sees a jump of the error rate."""
    rng = np.random.default_rng(0)
    mon = ShiftMonitor(prediction_rates=False).fit()
    for t in range(40):
        y = rng.integers(0, 2, 100)
        err = rng.random(100) < (0.1 if t < 20 else 0.4)
        mon.update(predictions=np.where(err, 1 - y, y), labels=y)
    rep = mon.report()
    assert rep.kind == "concept"
    votes = [e for e in rep.events if e.detector == "vote"]
    assert votes
    assert 2000 <= votes[0].sample <= 2400
    assert np.isnan(rep.error_rate).sum() == 0
    assert rep.error_rate[30] > rep.error_rate[5]


def test_labels_that_have_not_arrived() -> None:
    """NaN labels: those rows feed the features and predictions, the rest the error stream."""
    rng = np.random.default_rng(4)
    mon = ShiftMonitor(prediction_rates=False).fit(labels=rng.integers(0, 2, 300))
    for t in range(30):
        y = rng.integers(0, 2, 100).astype(float)
        err = rng.random(100) < (0.1 if t < 15 else 0.5)
        pred = np.where(err, 1 - y, y).astype(int)
        y[rng.random(100) < 0.5] = np.nan  # half the labels are still missing
        mon.update(predictions=pred, labels=y)
    rep = mon.report()
    assert rep.kind == "concept"
    assert 15 <= rep.changes[0].batch <= 18
    with pytest.raises(DataValidationError, match="one entry per row"):
        mon.update(predictions=np.zeros(4, dtype=int), labels=np.array([0.0, np.nan]))


def test_alpha_spending_levels() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(200, 2))
    for spending, horizon in (("bonferroni", 50), ("pi2", 10)):
        mon = ShiftMonitor(spending=spending, horizon=horizon, alpha=0.05).fit(ref)
        for _ in range(50):
            mon.update(rng.normal(size=(50, 2)))
        levels = [t.level for t in mon.report().batch_tests]
        assert sum(levels) <= 0.05 + 1e-12
        if spending == "pi2":
            assert levels[0] == pytest.approx(0.05 * 6 / math.pi**2)
        else:
            assert levels == pytest.approx([0.05 / 50] * 50)


def test_batch_test_fires_once_per_signal() -> None:
    rng = np.random.default_rng(2)
    mon = ShiftMonitor().fit(rng.normal(size=(500, 3)))
    for t in range(20):
        mon.update(rng.normal(size=(100, 3)) + (2.0 if t >= 5 else 0.0))
    rep = mon.report()
    feats = [e for e in rep.events if e.signal == "features"]
    assert len(feats) == 1
    assert feats[0].batch == 5
    assert rep.kind == "covariate"


def test_bad_input_and_parameters() -> None:
    with pytest.raises(InvalidParameterError, match="detector"):
        ShiftMonitor(detectors=("adwin", "nope")).fit()
    with pytest.raises(InvalidParameterError, match="min_votes"):
        ShiftMonitor(detectors=("adwin",), min_votes=2).fit()
    with pytest.raises(InvalidParameterError, match="spending"):
        ShiftMonitor(spending="never").fit()
    with pytest.raises(InvalidParameterError, match="not fitted"):
        ShiftMonitor().update(np.zeros((3, 2)))
    mon = ShiftMonitor().fit(np.zeros((10, 2)) + np.arange(10)[:, None])
    with pytest.raises(DataValidationError, match="features"):
        mon.update(np.zeros((3, 3)))
    with pytest.raises(DataValidationError, match="NaN"):
        mon.update(np.full((3, 2), np.nan))
    with pytest.raises(DataValidationError, match="empty"):
        mon.update()


def test_adapt_recovers_with_window_and_update() -> None:
    from sklearn.linear_model import SGDClassifier

    rng = np.random.default_rng(3)

    def batch(flip: bool) -> tuple[np.ndarray, np.ndarray]:
        X = rng.normal(size=(100, 2))
        y = (X[:, 0] + X[:, 1] > 0).astype(int)
        return X, (1 - y if flip else y)

    stream = [batch(t >= 10) for t in range(24)]
    ref = batch(False)
    win = adapt_on_drift(LogisticRegression(), ref, stream, min_labels=200)
    assert win.detection_batches[0] in (10, 11)
    assert win.retrain_batches
    assert win.recovery > 0.6
    assert win.recovered_fraction > 0.8
    assert win.batches_to_recover is not None
    assert win.batches_to_recover <= 4
    upd = adapt_on_drift(SGDClassifier(random_state=0), ref, stream, strategy="update")
    assert upd.recovery > 0.3
    with pytest.raises(InvalidParameterError, match="partial_fit"):
        adapt_on_drift(LogisticRegression(), ref, stream, strategy="update")


def _replay(stream: DriftStream, seed: int, batch: int = 100) -> ShiftMonitor:
    """A model fitted on the training rows; the monitor on the reference, then the stream."""
    model: DecisionTreeClassifier | LogisticRegression = (
        DecisionTreeClassifier(max_depth=6, random_state=0)
        if stream.name == "agrawal"
        else LogisticRegression()
    )
    model.fit(*stream.train)
    Xr, yr = stream.reference
    mon = ShiftMonitor(random_state=seed).fit(Xr, predictions=model.predict(Xr), labels=yr)
    for a in range(0, stream.y.size, batch):
        X, y = stream.X[a : a + batch], stream.y[a : a + batch]
        mon.update(X, predictions=model.predict(X), labels=y, time=a)
    return mon


def _first_after_change(mon: ShiftMonitor, stream: DriftStream) -> tuple[int, str, str]:
    changes = mon.report().changes
    assert changes, f"{stream.name}: no change found"
    first = changes[0]
    return first.sample - stream.change_at, first.kind, first.reason


def test_sea_concept_drift_is_named_concept() -> None:
    """SEA's threshold moves (variant 0 -> 3, noise 0.1): P(x) holds, P(y) and P(y|x) move.

    Before this fix the labels' test firing alone made it "label" (issue 16; here in 2 of these
    3 seeds); the monitor must say "concept" in each, and catch the change without an alarm
    before it.
    """
    for seed in range(3):
        stream = make_river_stream("sea", before=0, after=3, random_state=seed)
        delay, kind, reason = _first_after_change(_replay(stream, seed), stream)
        assert 0 <= delay <= 800
        assert kind == "concept", reason


@pytest.mark.parametrize("seed", [0, 1])
def test_agrawal_function_change_is_named_concept(seed: int) -> None:
    """Agrawal's classification function 0 -> 2: the labels move, the inputs do not."""
    stream = make_river_stream(
        "agrawal", n_train=600, n_reference=600, n_stream=1600, change_at=800, random_state=seed
    )
    mon = _replay(stream, seed)
    delay, kind, reason = _first_after_change(mon, stream)
    assert 0 <= delay <= 300
    assert kind == "concept", reason
    assert "inputs and the model's predictions held" in reason


def test_pure_label_shift_and_covariate_shift_streams() -> None:
    """SEA rows drawn class by class (P(x|y) fixed, P(y=1) 0.64 -> 0.3) are label shift; SEA
    rows kept with probability x0/10 (P(y|x) fixed; P(x), and with it P(y), move) are covariate.

    In both the labels' test fires with the inputs' tests; the label-shift check (P(x|y) and the
    per-class error rates against the reference) holds in the first and fails in the second.
    Before this fix the second was "label" in 2 of 3 seeds.
    """
    for seed in range(3):
        label = _replay(make_river_stream("label", random_state=seed), seed).report()
        first = label.changes[0]
        assert first.kind == "label", first.reason
        assert first.sample == 1500
        assert first.consistency_pvalue > 0.05
        assert first.consistency_rows >= 1000
        cov = _replay(make_river_stream("covariate", random_state=seed), seed).report()
        first = cov.changes[0]
        assert first.kind == "covariate", first.reason
        assert 1500 <= first.sample <= 1800
        if "labels" in first.signals:
            assert first.consistency_pvalue <= 0.05


def test_kind_from_labels_alone_and_without_inputs() -> None:
    """Labels move with nothing else watched: "label" (can't tell). Labels move while the
    predictions hold and the error rises: "concept". No scipy warning on tiny KS batches."""
    rng = np.random.default_rng(5)
    mon = ShiftMonitor(prediction_rates=False).fit(labels=rng.integers(0, 2, 500))
    for t in range(12):
        mon.update(labels=(rng.random(100) < (0.5 if t < 6 else 0.85)).astype(int))
    rep = mon.report()
    assert rep.kind == "label"
    assert "cannot be told apart" in rep.changes[0].reason

    # the answers flip for a quarter of class 0: P(y) moves, the predictions do not
    y0 = rng.integers(0, 2, 1000)
    mon = ShiftMonitor().fit(predictions=y0, labels=y0)
    for t in range(20):
        pred = rng.integers(0, 2, 100)
        y = np.where((t >= 10) & (pred == 0) & (rng.random(100) < 0.5), 1, pred)
        mon.update(predictions=pred, labels=y)
    rep = mon.report()
    assert rep.changes[0].batch >= 10
    assert rep.kind == "concept", rep.changes[0].reason

    # D = 1/n with n = m = 5: scipy's ks_2samp warns "Exact calculation unsuccessful" here
    mon = ShiftMonitor().fit(np.arange(5.0)[:, None])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mon.update(np.arange(5.0)[:, None] + 0.5)
    assert mon.report().batch_tests[0].pvalue == pytest.approx(1.0)
