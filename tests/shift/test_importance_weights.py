"""ImportanceWeighter: accuracy against a known density ratio, the overlap flag, bad input.

Thresholds come from benchmarks/bench_shift_correction.py (50 trials): the medians there are
classifier 0.01-0.03 x uniform at d = 1-3, uLSIF 0.2-0.4, KLIEP 0.14-0.24, KMM mean gap <= 0.01.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from nndoctor.exceptions import (
    DataValidationError,
    InvalidParameterError,
    LowOverlapWarning,
    NNDoctorError,
)
from nndoctor.shift import ImportanceWeighter, effective_sample_size


def _gaussian(d: int, seed: int, shift: float = 1.0, n_s: int = 600, n_t: int = 300):
    rng = np.random.default_rng(seed)
    mu = np.zeros(d)
    mu[0] = shift
    Xs = rng.normal(size=(n_s, d))
    Xt = rng.normal(size=(n_t, d)) + mu
    return Xs, Xt, np.exp(Xs @ mu - mu @ mu / 2)


def _relative_mse(method: str, d: int, seeds: range, **kw) -> tuple[float, float]:
    rel, means = [], []
    for seed in seeds:
        Xs, Xt, true = _gaussian(d, seed)
        iw = ImportanceWeighter(method, normalize=False, random_state=seed, **kw).fit(Xs, Xt)
        w, tn = iw.weights_ / iw.weights_.mean(), true / true.mean()
        rel.append(np.mean((w - tn) ** 2) / np.mean((1 - tn) ** 2))
        means.append(iw.weights_.mean())
    return float(np.median(rel)), float(np.median(means))


@pytest.mark.parametrize("d", [1, 2, 3])
def test_classifier_ratio_beats_uniform_and_has_the_right_scale(d: int) -> None:
    rel, mean = _relative_mse("classifier", d, range(8))
    assert rel < 0.2  # "several times below uniform" (benchmark: 0.01-0.03)
    # the n_s / n_t factor: E_source[beta] = 1; without it the mean would be n_t / n_s = 0.5
    assert abs(mean - 1.0) < 0.08


@pytest.mark.parametrize(("method", "d"), [("ulsif", 1), ("ulsif", 2), ("kliep", 1), ("kliep", 2)])
def test_kernel_ratios_beat_uniform(method: str, d: int) -> None:
    rel, _ = _relative_mse(method, d, range(6), n_centers=60)
    assert rel < 0.65


def test_kliep_weights_average_one_on_the_source() -> None:
    Xs, Xt, _ = _gaussian(2, 0)
    iw = ImportanceWeighter("kliep", normalize=False, random_state=0, n_centers=50).fit(Xs, Xt)
    assert iw.weights_.mean() == pytest.approx(1.0, abs=1e-3)  # KLIEP's constraint


def test_kmm_closes_most_of_the_mean_gap() -> None:
    gaps = []
    for seed in range(4):
        Xs, Xt, _ = _gaussian(3, seed, n_s=400, n_t=200)
        w = ImportanceWeighter("kmm", random_state=seed).fit(Xs, Xt).weights_
        weighted = (w[:, None] * Xs).sum(0) / w.sum()
        gaps.append(np.linalg.norm(weighted - Xt.mean(0)) / np.linalg.norm(Xs.mean(0) - Xt.mean(0)))
    assert np.median(gaps) < 0.2


def test_kmm_only_weights_its_source_rows() -> None:
    Xs, Xt, _ = _gaussian(1, 0, n_s=100, n_t=60)
    iw = ImportanceWeighter("kmm", random_state=0).fit(Xs, Xt)
    np.testing.assert_allclose(iw.weights(Xs), iw.weights_)
    assert np.isnan(iw.domain_auc_)
    with pytest.raises(InvalidParameterError, match="moment"):
        iw.weights(Xt)


def test_low_overlap_flag_fires_at_a_4_sd_shift() -> None:
    Xs, Xt, _ = _gaussian(1, 0, shift=4.0)
    with pytest.warns(LowOverlapWarning, match="barely overlap"):
        iw = ImportanceWeighter(random_state=0).fit(Xs, Xt)
    assert iw.low_overlap_ is True
    assert iw.raw_ess_ratio_ < 0.05
    assert iw.domain_auc_ > 0.99
    assert iw.summary().low_overlap is True


def test_low_overlap_flag_fires_for_a_variance_shift_at_d20() -> None:
    rng = np.random.default_rng(0)
    Xs, Xt = rng.normal(size=(600, 20)), 2.0 * rng.normal(size=(300, 20))
    with pytest.warns(LowOverlapWarning):
        iw = ImportanceWeighter(classifier="quadratic", random_state=0).fit(Xs, Xt)
    assert iw.low_overlap_


def test_no_flag_without_shift_or_under_a_mild_shift() -> None:
    for shift in (0.0, 0.5):
        Xs, Xt, _ = _gaussian(20 if shift == 0 else 1, 1, shift=shift)
        with warnings.catch_warnings():
            warnings.simplefilter("error", LowOverlapWarning)
            iw = ImportanceWeighter(classifier="quadratic", random_state=0).fit(Xs, Xt)
        assert not iw.low_overlap_
        assert iw.ess_ratio_ > 0.6


def test_clip_normalize_quantiles_and_new_rows() -> None:
    Xs, Xt, _true = _gaussian(1, 3)
    iw = ImportanceWeighter(clip=2.0, normalize=False, random_state=0).fit(Xs, Xt)
    assert iw.weights_.max() <= 2.0
    iw = ImportanceWeighter(clip=2.0, random_state=0).fit(Xs, Xt)
    assert iw.weights_.mean() == pytest.approx(1.0)
    assert iw.weight_quantiles_["max"] == pytest.approx(iw.weights_.max())
    assert iw.effective_sample_size_ == pytest.approx(effective_sample_size(iw.weights_))
    new = iw.weights(Xs)
    assert np.corrcoef(new, iw.weights_)[0, 1] > 0.98
    unnormalized = ImportanceWeighter(clip=2.0, normalize=False, random_state=0).fit(Xs, Xt)
    assert unnormalized.weights(Xs + 5.0).max() <= 2.0  # the clip applies to new rows too


def test_same_seed_same_weights() -> None:
    Xs, Xt, _ = _gaussian(2, 0)
    for method in ("classifier", "ulsif"):
        a = ImportanceWeighter(method, random_state=7, n_centers=40).fit(Xs, Xt).weights_
        b = ImportanceWeighter(method, random_state=7, n_centers=40).fit(Xs, Xt).weights_
        np.testing.assert_array_equal(a, b)


def test_effective_sample_size_bounds() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        w = rng.exponential(size=50) ** 3
        ess = effective_sample_size(w)
        assert ess == pytest.approx(w.sum() ** 2 / np.square(w).sum(), rel=1e-12)
        # a weight vector's scale carries no information: ESS is invariant to it
        assert effective_sample_size(1e6 * w) == pytest.approx(ess, rel=1e-12)
    assert effective_sample_size(np.ones(50)) == pytest.approx(50.0)
    assert effective_sample_size([1.0] * 7 + [0.0] * 43) == pytest.approx(7.0)  # k equal weights
    assert effective_sample_size([1.0, 2.0]) == pytest.approx(9.0 / 5.0)
    assert effective_sample_size([0.0, 3.0, 0.0]) == pytest.approx(1.0)
    assert effective_sample_size([0.0, 0.0]) == 0.0


def test_bad_input_is_a_typed_error() -> None:
    Xs, Xt, _ = _gaussian(2, 0, n_s=50, n_t=50)
    bad = Xs.copy()
    bad[0, 0] = np.nan
    with pytest.raises(DataValidationError, match="NaN"):
        ImportanceWeighter().fit(bad, Xt)
    with pytest.raises(DataValidationError, match="features"):
        ImportanceWeighter().fit(Xs, Xt[:, :1])
    with pytest.raises(InvalidParameterError, match="choose one of"):
        ImportanceWeighter("density").fit(Xs, Xt)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="clip"):
        ImportanceWeighter(clip=-1.0).fit(Xs, Xt)
    with pytest.raises(InvalidParameterError, match="classifier"):
        ImportanceWeighter(classifier=object()).fit(Xs, Xt)
    with pytest.raises(NNDoctorError, match="not fitted"):
        ImportanceWeighter().weights(Xs)
    iw = ImportanceWeighter(random_state=0).fit(Xs, Xt)
    with pytest.raises(InvalidParameterError, match="features"):
        iw.weights(Xs[:, :1])
