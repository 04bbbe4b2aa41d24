"""Concept tests: size under H0 (calibrated and miscalibrated models), power, decomposition."""

from __future__ import annotations

import numpy as np
import pytest

from nndoctor.exceptions import DataValidationError, SmallSampleWarning
from nndoctor.shift import accuracy_gap_test, conditional_shift_test, decompose_accuracy_drop

K = 4


def _sample(
    rng: np.random.Generator, n: int, *, temp: float = 1.0, swap: bool = False, sharp: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """True posteriors p; the model reports p**(1/temp) (miscalibrated unless temp = 1)."""
    y0 = rng.integers(0, K, n)
    logits = rng.normal(size=(n, K))
    logits[np.arange(n), y0] += sharp
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    y = np.minimum(y, K - 1)
    if swap:
        y = np.where(y == 0, 1, np.where(y == 1, 0, y))
    q = p ** (1.0 / temp)
    return q / q.sum(axis=1, keepdims=True), y


def test_size_under_h0_calibrated_and_miscalibrated() -> None:
    """FPR at 0.05 within 3 standard errors over 240 seeded repetitions (half overconfident)."""
    rng = np.random.default_rng(0)
    reps = 240
    rej = np.zeros(2)
    for r in range(reps):
        temp = 1.0 if r % 2 else 0.5
        ps, ys = _sample(rng, 500, temp=temp)
        pt, yt = _sample(rng, 200, temp=temp)
        rej[0] += accuracy_gap_test(ps, ys, pt, yt, n_bootstrap=100, random_state=r).pvalue < 0.05
        rej[1] += conditional_shift_test(ps, ys, pt, yt).pvalue < 0.05
    fpr = rej / reps
    se = np.sqrt(0.05 * 0.95 / reps)
    assert np.all(fpr <= 0.05 + 3 * se), fpr
    assert np.all(fpr >= 0.005), fpr  # not degenerate


def test_power_on_swapped_labels_with_few_labels() -> None:
    rng = np.random.default_rng(1)
    hits = np.zeros(2)
    for r in range(20):
        ps, ys = _sample(rng, 500)
        pt, yt = _sample(rng, 100, swap=True)
        hits[0] += accuracy_gap_test(ps, ys, pt, yt, random_state=r).concept_shift_detected
        hits[1] += conditional_shift_test(ps, ys, pt, yt).concept_shift_detected
    assert np.all(hits >= 19), hits


def test_margin_grows_when_labels_are_few() -> None:
    rng = np.random.default_rng(2)
    ps, ys = _sample(rng, 500)
    pt, yt = _sample(rng, 400)
    few = accuracy_gap_test(ps, ys, pt[:20], yt[:20], random_state=0)
    many = accuracy_gap_test(ps, ys, pt, yt, random_state=0)
    assert few.margin > 2 * many.margin
    assert few.se_estimator > 0
    assert few.se_binomial > many.se_binomial


def test_perfect_source_does_not_overflag_one_error() -> None:
    """A source with no error gives a prediction < 1 (pseudo-counts), so one slip is no alarm."""
    n = 300
    ps = np.full((n, 2), 0.01)
    ps[:, 0] = 0.99
    ys = np.zeros(n, dtype=int)
    pt, yt = ps[:100], ys[:100].copy()
    yt[0] = 1
    res = accuracy_gap_test(ps, ys, pt, yt, random_state=0)
    assert res.predicted_accuracy < 1.0
    assert not res.concept_shift_detected


def test_weights_restore_validity_under_label_shift() -> None:
    """Target with another prior: unweighted the gap test may fire, w(y)-weighted it should not."""
    rng = np.random.default_rng(3)
    ps, ys = _sample(rng, 4000)
    pt, yt = _sample(rng, 4000)
    # make a label-shifted target by resampling classes with prior q
    q = np.array([0.7, 0.1, 0.1, 0.1])
    keep = rng.random(yt.size) < (q / 0.25 / 2.8)[yt]
    pt, yt = pt[keep][:300], yt[keep][:300]
    w = (q / 0.25)[ys]
    res = conditional_shift_test(ps[:1000], ys[:1000], pt, yt, source_weights=w[:1000])
    assert res.pvalue > 0.001


def test_decomposition_is_additive_and_finds_the_concept_part() -> None:
    rng = np.random.default_rng(4)
    ps, ys = _sample(rng, 600)
    pt, yt = _sample(rng, 300, swap=True, sharp=1.0)  # harder inputs *and* changed answers
    d = decompose_accuracy_drop(ps, ys, pt, yt, random_state=0)
    assert d.total_drop == pytest.approx(d.covariate_part + d.concept_part)
    assert d.covariate_part > 0.05  # harder inputs cost accuracy under the old P(y|x)
    assert d.concept_ci[0] > 0.1
    assert d.covariate_ci[0] <= d.covariate_part <= d.covariate_ci[1]


def test_decomposition_interval_covers_zero_without_concept_shift() -> None:
    """Harder target inputs, same P(y|x): the concept part's 95 % interval covers 0 (>= 85 %)."""
    covered = 0
    for r in range(40):
        rng = np.random.default_rng(100 + r)
        ps, ys = _sample(rng, 600)
        pt, yt = _sample(rng, 300, sharp=1.0)
        d = decompose_accuracy_drop(ps, ys, pt, yt, n_bootstrap=100, random_state=r)
        covered += d.concept_ci[0] <= 0.0 <= d.concept_ci[1]
        assert d.covariate_part > 0.0
    assert covered >= 34


def test_same_seed_same_answer() -> None:
    rng = np.random.default_rng(5)
    ps, ys = _sample(rng, 200)
    pt, yt = _sample(rng, 50)
    a = accuracy_gap_test(ps, ys, pt, yt, random_state=7)
    b = accuracy_gap_test(ps, ys, pt, yt, random_state=7)
    assert a == b


def test_bad_input() -> None:
    rng = np.random.default_rng(6)
    ps, ys = _sample(rng, 50)
    pt, yt = _sample(rng, 20)
    with pytest.raises(DataValidationError, match="labels must lie in"):
        accuracy_gap_test(ps, ys, pt, yt + 10)
    with pytest.raises(DataValidationError, match="classes"):
        conditional_shift_test(ps, ys, pt[:, :3] / pt[:, :3].sum(1, keepdims=True), yt)
    with pytest.raises(DataValidationError, match="source_weights"):
        conditional_shift_test(ps, ys, pt, yt, source_weights=-np.ones(50))
    with pytest.raises(DataValidationError, match="integer class"):
        conditional_shift_test(ps, ys + 0.5, pt, yt)
    with pytest.warns(SmallSampleWarning):
        res = accuracy_gap_test(ps, ys, pt[:2], yt[:2])
    assert np.isnan(res.pvalue)
    assert not res.concept_shift_detected
