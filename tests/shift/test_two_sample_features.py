"""Per-feature KS / χ² tests: scipy agreement, corrections, FPR, min_effect, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nndoctor.exceptions import DataValidationError, InvalidParameterError, SmallSampleWarning
from nndoctor.shift import adjust_pvalues, chi2_test, feature_test, ks_test

ALPHA = 0.05
REPS = 500
SE = (ALPHA * (1 - ALPHA) / REPS) ** 0.5


@pytest.mark.parametrize(("m", "n"), [(40, 55), (12_000, 15_000)])
def test_ks_and_wasserstein_match_scipy(m: int, n: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(m, 2))
    y = rng.normal(size=(n, 2)) + np.array([0.1, 0.0])
    res = ks_test(x, y, n_bootstrap=50, random_state=0)
    for j, f in enumerate(res.features):
        ref = stats.ks_2samp(x[:, j], y[:, j])
        assert f.statistic == pytest.approx(ref.statistic)
        assert f.pvalue == pytest.approx(ref.pvalue, rel=1e-6)
        w = stats.wasserstein_distance(x[:, j], y[:, j])
        assert f.effects["wasserstein"] == pytest.approx(w, rel=1e-9)
        lo, hi = f.effect_ci
        assert lo <= f.effect <= hi
        wlo, whi = f.effect_cis["wasserstein"]
        assert wlo <= f.effects["wasserstein"] <= whi


def test_corrections_by_hand() -> None:
    p = [0.01, 0.04, 0.03, 0.5]
    np.testing.assert_allclose(adjust_pvalues(p, "bonferroni"), [0.04, 0.16, 0.12, 1.0])
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), [0.04, 0.09, 0.09, 0.5])
    np.testing.assert_allclose(adjust_pvalues(p, "fdr_bh"), [0.04, 0.16 / 3, 0.16 / 3, 0.5])
    assert np.isnan(adjust_pvalues([np.nan, 0.1], "holm")[0])
    with pytest.raises(InvalidParameterError, match="correction 'sidak' is unknown"):
        adjust_pvalues(p, "sidak")  # type: ignore[arg-type]


def test_ks_overall_fpr_under_h0() -> None:
    rng = np.random.default_rng(1)
    hits = [
        ks_test(rng.normal(size=(40, 3)), rng.normal(size=(40, 3)), n_bootstrap=0).drift_detected
        for _ in range(REPS)
    ]
    assert abs(np.mean(hits) - ALPHA) < 3 * SE


def test_chi2_fpr_under_h0() -> None:
    rng = np.random.default_rng(2)
    probs = [0.5, 0.3, 0.15, 0.05]
    pvals = []
    for _ in range(REPS):
        x = rng.choice(list("abcd"), size=(150, 1), p=probs)
        y = rng.choice(list("abcd"), size=(150, 1), p=probs)
        pvals.append(chi2_test(x, y, n_bootstrap=0).pvalue)
    p = np.asarray(pvals)
    assert p.min() > 0
    assert abs(np.mean(p <= ALPHA) - ALPHA) < 3 * SE


def test_power_and_which_feature() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 5))
    y = rng.normal(size=(500, 5))
    y[:, 2] += 0.5
    res = ks_test(x, y, random_state=0)
    assert [f.name for f in res.features if f.drifted] == ["x2"]
    assert res.ranked()[0].name == "x2"


def test_min_effect_keeps_huge_samples_from_alarming() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(200_000, 1))
    y = rng.normal(size=(200_000, 1)) + 0.03  # real but trivial
    plain = ks_test(x, y, n_bootstrap=20, random_state=0)
    assert plain.drift_detected
    gated = ks_test(x, y, min_effect=0.05, n_bootstrap=20, random_state=0)
    f = gated.features[0]
    assert f.significant
    assert f.negligible
    assert not f.drifted
    assert not gated.drift_detected
    assert f.effect_ci[1] < 0.05


def test_feature_test_picks_test_from_dtype() -> None:
    rng = np.random.default_rng(5)
    src = pd.DataFrame(
        {
            "num": rng.normal(size=300),
            "cat": pd.Categorical(rng.choice(["u", "v"], 300)),
            "flag": rng.random(300) < 0.5,
            "txt": rng.choice(["a", "b", "c"], 300),
        }
    )
    tgt = src.sample(frac=1.0, random_state=1).reset_index(drop=True)
    tgt["txt"] = rng.choice(["a", "b", "c"], 300, p=[0.1, 0.1, 0.8])
    res = feature_test(src, tgt, random_state=0)
    assert [f.test for f in res.features] == ["ks", "chi2", "chi2", "chi2"]
    assert [f.name for f in res.features if f.drifted] == ["txt"]
    assert res.method == "chi2+ks"
    assert isinstance(res.to_dict()["features"][0]["drifted"], bool)
    forced = feature_test(src, tgt, categorical=["num"], n_bootstrap=0)
    assert forced.features[0].test == "chi2"


def test_chi2_merges_rare_and_empty_categories() -> None:
    x = np.array(["a"] * 50 + ["b"] * 50 + ["rare"])
    y = np.array(["a"] * 50 + ["b"] * 50)
    res = chi2_test(x, y, n_bootstrap=0)
    assert res.features[0].pvalue > 0.5


def test_same_seed_same_intervals() -> None:
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(80, 2)), rng.normal(size=(90, 2))
    a = ks_test(x, y, random_state=3)
    b = ks_test(x, y, random_state=3)
    assert a.to_dict() == b.to_dict()


def test_bad_input() -> None:
    num = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    txt = pd.DataFrame({"a": ["x", "y", "z"]})
    with pytest.raises(DataValidationError, match="column 'a' of Y holds text"):
        ks_test(num, txt)
    with pytest.raises(DataValidationError, match="column 'a' of Y holds 1 missing value"):
        ks_test(num, pd.DataFrame({"a": [1.0, np.nan, 2.0]}), missing="raise")
    with pytest.raises(DataValidationError, match="infinity is not a missing value"):
        ks_test(num, pd.DataFrame({"a": [1.0, np.inf, 2.0]}))
    with pytest.raises(DataValidationError, match="Y has 2 features but X has 1"):
        ks_test(np.zeros((3, 1)), np.zeros((3, 2)))
    with pytest.raises(DataValidationError, match="lacks column"):
        ks_test(num, pd.DataFrame({"b": [1.0, 2.0]}))
    with pytest.raises(DataValidationError, match="0 rows"):
        ks_test(np.zeros((0, 1)), np.zeros((3, 1)))
    with pytest.raises(DataValidationError, match="missing value"):
        chi2_test(
            pd.DataFrame({"a": ["x", None]}), pd.DataFrame({"a": ["x", "y"]}), missing="raise"
        )
    with pytest.raises(InvalidParameterError, match="min_effect"):
        ks_test(num, num, min_effect=2.0)
    with pytest.raises(InvalidParameterError, match="categorical names"):
        feature_test(num, num, categorical=["zzz"])
    with pytest.warns(SmallSampleWarning, match="at least 2 rows"):
        res = ks_test(np.zeros((1, 2)), np.ones((4, 2)))
    assert np.isnan(res.pvalue)
    assert not res.drift_detected


@pytest.mark.parametrize(("m", "n"), [(5, 5), (7, 7), (30, 30), (60, 60)])
def test_ks_exact_pvalue_of_smallest_gap_is_one_and_silent(m: int, n: int) -> None:
    """D = 1/n between two samples of n: the exact p-value is 1. scipy's recursion rounds it to
    1 + 2e-16, warns "Exact calculation unsuccessful" and falls back to the asymptotic law; ours
    neither warns nor leaves the exact law (the Hypothesis example that made CI flaky)."""
    x = np.arange(m, dtype=float) * 2.0
    y = x + 1.0  # interleaved: the ECDFs never differ by more than 1/n
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = ks_test(x[:, None], y[:, None], n_bootstrap=0).features[0]
    assert f.statistic == pytest.approx(1.0 / n)
    assert f.pvalue == pytest.approx(1.0, abs=1e-12)


def test_ks_pvalue_matches_scipy_where_scipy_is_exact() -> None:
    """Away from that rounding, the p-value is scipy's exact one, to the last digits."""
    rng = np.random.default_rng(7)
    for _ in range(40):
        m, n = (int(v) for v in rng.integers(2, 80, size=2))
        x, y = rng.normal(size=m), rng.normal(0.3, 1.0, size=n)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ref = stats.ks_2samp(x, y, method="exact")
        f = ks_test(x[:, None], y[:, None], n_bootstrap=0).features[0]
        assert f.statistic == pytest.approx(float(ref.statistic), abs=1e-12)
        assert f.pvalue == pytest.approx(float(ref.pvalue), rel=1e-9)
