"""Missing values in the per-feature tests: the missing-rate test, the policies, CLI and report."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from typer.testing import CliRunner

from nndoctor.cli import app
from nndoctor.exceptions import DataValidationError, InvalidParameterError, SmallSampleWarning
from nndoctor.report import to_sections
from nndoctor.shift import (
    MissingnessTest,
    ShiftDetector,
    adjust_pvalues,
    chi2_test,
    compare_samples,
    feature_test,
    ks_test,
)
from nndoctor.shift._univariate import MISSING_CATEGORY, missing_rate_pvalues

ALPHA = 0.05


def _bound(reps: int) -> float:
    """Three binomial standard errors of a rejection rate at ALPHA."""
    return 3 * (ALPHA * (1 - ALPHA) / reps) ** 0.5


def _with_nan(values: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    out = values.astype(np.float64).copy()
    out[rng.random(out.shape) < rate] = np.nan
    return out


# --------------------------------------------------------------------------------------------
# the missing-rate test itself


def test_missing_rate_pvalues_match_scipy() -> None:
    a, c, m, n = np.array([50, 2, 0, 7, 30]), np.array([150, 3, 4, 7, 0]), 1000, 800
    chi2, p, fisher = missing_rate_pvalues(a, m, c, n)
    for i in range(a.size):
        table = np.array([[a[i], m - a[i]], [c[i], n - c[i]]])
        ref = stats.chi2_contingency(table, correction=False)
        assert chi2[i] == pytest.approx(ref.statistic)
        expected_min = ref.expected_freq.min()
        assert bool(fisher[i]) == (expected_min < 5)
        want = stats.fisher_exact(table).pvalue if fisher[i] else ref.pvalue
        assert p[i] == pytest.approx(max(want, np.finfo(float).tiny), rel=1e-9)
    # nothing missing anywhere, or everything missing in both: no evidence of a change
    chi2, p, _ = missing_rate_pvalues([0, 10], 10, [0, 20], 20)
    assert chi2.tolist() == [0.0, 0.0]
    assert p.tolist() == [1.0, 1.0]


@pytest.mark.parametrize(("rate", "n", "conservative"), [(0.1, 200, False), (0.01, 150, True)])
def test_missing_rate_fpr_under_mcar(rate: float, n: int, conservative: bool) -> None:
    """Equal missing rates (MCAR): the test rejects about ALPHA of the time (χ² regime), at most
    ALPHA with Fisher's exact test (few missing values: discrete, conservative)."""
    reps = 1000 if conservative else 4000  # Fisher's test runs one table at a time
    rng = np.random.default_rng(10)
    kx = rng.binomial(n, rate, size=reps)
    ky = rng.binomial(n, rate, size=reps)
    _, p, fisher = missing_rate_pvalues(kx, n, ky, n)
    fpr = float(np.mean(p <= ALPHA))
    assert fpr <= ALPHA + _bound(reps)
    if conservative:
        assert fisher.mean() > 0.5
    else:
        assert not fisher.any()
        assert fpr >= ALPHA - _bound(reps)


def test_missing_rate_power() -> None:
    """5% -> 15% missing at n = 1000: practically always detected; 5% -> 7% rarely."""
    reps = 400
    rng = np.random.default_rng(11)
    kx = rng.binomial(1000, 0.05, size=reps)
    _, p_big, _ = missing_rate_pvalues(kx, 1000, rng.binomial(1000, 0.15, size=reps), 1000)
    _, p_small, _ = missing_rate_pvalues(kx, 1000, rng.binomial(1000, 0.07, size=reps), 1000)
    assert np.mean(p_big <= ALPHA) > 0.99
    assert 0.1 < np.mean(p_small <= ALPHA) < 0.7  # a real but small change: partial power


# --------------------------------------------------------------------------------------------
# the per-feature tests end to end


def test_feature_test_fpr_under_mcar() -> None:
    """No change at all, 15% MCAR missing in every column of both samples: the whole family
    (distribution + missing-rate tests, Holm) keeps its level."""
    reps = 300
    rng = np.random.default_rng(12)
    hits = []
    for _ in range(reps):
        x = _with_nan(rng.normal(size=(60, 2)), 0.15, rng)
        y = _with_nan(rng.normal(size=(60, 2)), 0.15, rng)
        res = ks_test(x, y, n_bootstrap=0)
        assert res.has_missing
        hits.append(res.drift_detected)
    assert np.mean(hits) <= ALPHA + _bound(reps)


def test_distribution_test_on_observed_values_keeps_its_level() -> None:
    """MCAR missingness with different rates (10% vs 40%) leaves the observed values a random
    sample: the KS test on them still has FPR ~ ALPHA."""
    reps = 300
    rng = np.random.default_rng(13)
    pvals = []
    for _ in range(reps):
        x = _with_nan(rng.normal(size=(80, 1)), 0.1, rng)
        y = _with_nan(rng.normal(size=(80, 1)), 0.4, rng)
        f = ks_test(x, y, n_bootstrap=0, missing="drop").features[0]
        assert f.missingness is not None
        assert f.missingness.test == "none"
        assert f.n_source + f.missingness.n_missing_source == 80
        pvals.append(f.pvalue)
    fpr = float(np.mean(np.asarray(pvals) <= ALPHA))
    assert abs(fpr - ALPHA) <= _bound(reps)


def test_rate_change_is_flagged_and_one_family_covers_both() -> None:
    rng = np.random.default_rng(14)
    x = pd.DataFrame({"a": rng.normal(size=1000), "b": rng.normal(size=1000)})
    y = pd.DataFrame({"a": rng.normal(size=1000), "b": rng.normal(size=1000) + 0.3})
    x["a"] = _with_nan(x["a"].to_numpy(), 0.05, rng)
    y["a"] = _with_nan(y["a"].to_numpy(), 0.15, rng)
    res = feature_test(x, y, n_bootstrap=0, random_state=0)
    a, b = res.features
    assert a.missingness is not None
    assert b.missingness is None
    assert a.missingness_drifted
    assert not a.distribution_drifted
    assert a.drifted
    assert b.distribution_drifted
    assert not b.missingness_drifted
    assert b.drifted
    assert res.n_drifted == 2
    assert res.drift_detected
    assert a.missingness.test == "chi2"
    assert 0.03 < a.missingness.fraction_source < 0.07 < 0.12 < a.missingness.fraction_target
    # Holm over the 2 distribution p-values and the 1 missing-rate p-value together
    family = [a.pvalue, b.pvalue, a.missingness.pvalue]
    expected = adjust_pvalues(family, "holm")
    got = [a.adjusted_pvalue, b.adjusted_pvalue, a.missingness.adjusted_pvalue]
    np.testing.assert_allclose(got, expected)
    assert res.pvalue == pytest.approx(min(expected))
    # "drop": same observed-value tests, no rate test, so the rate change goes unseen
    dropped = feature_test(x, y, n_bootstrap=0, random_state=0, missing="drop")
    assert dropped.features[0].pvalue == a.pvalue
    assert not dropped.features[0].drifted
    assert dropped.features[0].missingness is not None
    assert dropped.features[0].missingness.fraction_target == a.missingness.fraction_target
    # min_effect gates the missing-rate test through φ as it gates Cramér's V
    gated = feature_test(x, y, n_bootstrap=0, random_state=0, min_effect=0.5)
    assert gated.features[0].missingness is not None
    assert gated.features[0].missingness.negligible
    assert not gated.features[0].drifted


def test_clean_data_unchanged_by_the_policy() -> None:
    rng = np.random.default_rng(15)
    x, y = rng.normal(size=(100, 3)), rng.normal(size=(120, 3)) + np.array([0.5, 0, 0])
    base = ks_test(x, y, random_state=1).to_dict()
    for policy in ("drop", "category", "raise"):
        other = ks_test(x, y, random_state=1, missing=policy).to_dict()  # type: ignore[arg-type]
        assert other.pop("missing") == policy
        assert {k: v for k, v in base.items() if k != "missing"} == other
    assert all(f["missingness"] is None for f in base["features"])


def test_raise_names_the_column_and_the_fix() -> None:
    x = pd.DataFrame({"ok": [1.0, 2.0, 3.0], "income": [1.0, np.nan, 3.0]})
    with pytest.raises(DataValidationError, match=r"column 'income' of X holds 1 missing") as e:
        feature_test(x, x, missing="raise")
    assert "missing='test'" in str(e.value)
    assert "impute" in str(e.value)
    with pytest.raises(DataValidationError, match="column 'c' of Y holds 1 missing"):
        chi2_test(pd.DataFrame({"c": ["u", "v"]}), pd.DataFrame({"c": ["u", pd.NA]}),
                  missing="raise")  # fmt: skip
    with pytest.raises(DataValidationError, match="infinity is not a missing value"):
        ks_test(np.array([[1.0], [np.inf], [2.0]]), np.ones((3, 1)), missing="drop")
    with pytest.raises(InvalidParameterError, match="missing 'impute' is unknown"):
        ks_test(np.ones((3, 1)), np.ones((3, 1)), missing="impute")  # type: ignore[arg-type]


def test_column_missing_throughout_one_sample() -> None:
    rng = np.random.default_rng(16)
    x = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})
    y = pd.DataFrame({"a": np.full(40, np.nan), "b": rng.normal(size=40)})
    with pytest.warns(SmallSampleWarning, match=r"'a' \(50 and 0\).*missing rate still runs"):
        res = feature_test(x, y, random_state=0)
    a = res.features[0]
    assert np.isnan(a.pvalue)
    assert np.isnan(a.effect)
    assert (a.n_source, a.n_target) == (50, 0)
    assert a.missingness is not None
    assert (a.missingness.fraction_source, a.missingness.fraction_target) == (0.0, 1.0)
    assert a.missingness.drifted
    assert a.drifted
    assert res.drift_detected
    assert res.pvalue == pytest.approx(a.missingness.adjusted_pvalue)
    assert res.features[1].missingness is None
    json.loads(res.to_json())  # NaN become strings: strict JSON


def test_pandas_missing_markers_and_dtypes() -> None:
    """None, NaN, pd.NA in float, nullable-integer, object, string and category columns."""
    n = 40
    rng = np.random.default_rng(17)
    x = pd.DataFrame(
        {
            "f": rng.normal(size=n),
            "i": pd.array(rng.integers(0, 9, n), dtype="Int64"),
            "o": pd.Series(rng.choice(["u", "v"], n), dtype=object),
            "s": pd.array(rng.choice(["p", "q"], n), dtype="string"),
            "k": pd.Categorical(rng.choice(["r", "t"], n)),
        }
    )
    y = x.copy()
    x.loc[:3, "f"] = np.nan
    y.loc[:3, "i"] = pd.NA
    y.loc[:4, "o"] = None
    x.loc[:1, "o"] = np.nan
    y.loc[:2, "s"] = pd.NA
    y.loc[:5, "k"] = np.nan
    res = feature_test(x, y, n_bootstrap=0, random_state=0)
    counts = {
        f.name: (f.missingness.n_missing_source, f.missingness.n_missing_target)
        for f in res.features
        if f.missingness is not None
    }
    assert counts == {"f": (4, 0), "i": (0, 4), "o": (2, 5), "s": (0, 3), "k": (0, 6)}
    assert [f.test for f in res.features] == ["ks", "ks", "chi2", "chi2", "chi2"]
    assert res.features[1].n_target == n - 4
    # "category": categorical columns count missing as a category, numeric ones keep the test
    cat = feature_test(x, y, n_bootstrap=0, random_state=0, missing="category")
    by_name = {f.name: f for f in cat.features}
    assert by_name["k"].missingness is not None
    assert by_name["k"].missingness.test == "none"
    assert by_name["k"].n_target == n  # the 6 missing values are in the χ² table
    assert by_name["f"].missingness is not None
    assert by_name["f"].missingness.test == "fisher"
    assert MISSING_CATEGORY == "(missing)"


def test_category_sees_a_rate_change_in_one_test() -> None:
    rng = np.random.default_rng(18)
    x = pd.DataFrame({"c": rng.choice(["a", "b"], 600).astype(object)})
    y = pd.DataFrame({"c": rng.choice(["a", "b"], 600).astype(object)})
    x.loc[rng.random(600) < 0.05, "c"] = None
    y.loc[rng.random(600) < 0.2, "c"] = None
    f = chi2_test(x, y, n_bootstrap=0, missing="category").features[0]
    assert f.drifted
    assert f.distribution_drifted
    assert f.pvalue < 1e-6
    assert f.missingness is not None
    assert np.isnan(f.missingness.pvalue)
    # the observed values alone did not move: without the missing category the evidence is gone
    assert chi2_test(x, y, n_bootstrap=0, missing="drop").features[0].pvalue > 1e-3


def test_suite_detector_and_report() -> None:
    rng = np.random.default_rng(19)
    src = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    tgt = pd.DataFrame({"a": rng.normal(size=150), "b": rng.normal(size=150)})
    src.loc[:1, "a"] = np.nan
    tgt["b"] = np.nan  # a broken pipeline: the column is gone
    with pytest.warns(SmallSampleWarning):
        rep = compare_samples(src, tgt, n_permutations=99, random_state=0)
    assert rep.drift_detected
    assert rep.features is not None
    assert rep.mmd is not None
    assert rep.features.features[1].missingness_drifted
    assert rep.mmd.details["complete_rows"] == "198/200 and 150/150"
    assert rep.mmd.details["columns_left_out"] == "b"
    assert rep.mmd.n_source == 198
    assert set(rep.samples) == {"a"}  # no plot of a column with no value on one side
    with pytest.raises(DataValidationError, match="missing value"):
        compare_samples(src, tgt, missing="raise")
    # the detector passes the policy through its options
    det = ShiftDetector("features", options={"missing": "drop", "n_bootstrap": 0}).fit(src)
    out = det.test(src.sample(frac=1.0, random_state=1))
    assert not out.drift_detected
    assert out.missing == "drop"
    # the table gains the missing columns only when some column has missing values
    feats = next(s for s in to_sections(rep) if s.title.startswith("Per-feature"))
    assert "missing" in feats.table[0]
    assert "p miss." in feats.table[0]
    assert "missing rate changed in 1 (b)" in feats.verdict
    assert feats.table[0]["feature"] == "b"
    assert feats.table[0]["drift"] == "DRIFT (missing)"
    clean = to_sections(feature_test(src.fillna(0.0), src.fillna(0.0), n_bootstrap=0))[0]
    assert "missing" not in clean.table[0]
    assert "missing" not in clean.verdict


def test_missingness_record_is_public_and_serializable() -> None:
    res = ks_test(np.array([[1.0], [np.nan]] * 20), np.array([[1.0], [2.0]] * 20), n_bootstrap=0)
    rec = res.features[0].missingness
    assert isinstance(rec, MissingnessTest)
    d = res.to_dict()["features"][0]["missingness"]
    assert set(d) == {
        "fraction_source", "fraction_target", "n_missing_source", "n_missing_target", "test",
        "statistic", "pvalue", "adjusted_pvalue", "effect", "significant", "drifted",
        "negligible",
    }  # fmt: skip
    assert d["fraction_source"] == 0.5
    assert d["drifted"] is True


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(1, 30),
    n=st.integers(1, 30),
    rate_x=st.floats(0.0, 1.0),
    rate_y=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_counts_fractions_and_policies_agree(
    m: int, n: int, rate_x: float, rate_y: float, seed: int
) -> None:
    """Any pattern of NaN, any sizes: counts add up, p-values are valid, "drop" and "test" run
    the same distribution test, and a column without missing values has no record."""
    rng = np.random.default_rng(seed)
    x = np.column_stack((_with_nan(rng.normal(size=m), rate_x, rng), rng.normal(size=m)))
    y = np.column_stack((_with_nan(rng.normal(size=n), rate_y, rng), rng.normal(size=n)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SmallSampleWarning)
        res = ks_test(x, y, n_bootstrap=0)
        dropped = ks_test(x, y, n_bootstrap=0, missing="drop")
    f, clean = res.features
    observed = min(f.n_source, f.n_target)
    assert bool(caught) == (observed < 2)  # NaN distribution test exactly when it must be
    assert np.isnan(f.pvalue) == (observed < 2)
    assert clean.missingness is None
    kx, ky = int(np.isnan(x[:, 0]).sum()), int(np.isnan(y[:, 0]).sum())
    if kx + ky == 0:
        assert f.missingness is None
        return
    t = f.missingness
    assert t is not None
    assert (t.n_missing_source, t.n_missing_target) == (kx, ky)
    assert (f.n_source, f.n_target) == (m - kx, n - ky)
    assert t.fraction_source == kx / m
    assert 0.0 < t.pvalue <= 1.0
    assert t.pvalue <= t.adjusted_pvalue <= 1.0
    assert 0.0 <= t.effect <= 1.0 + 1e-12
    d = dropped.features[0]
    assert np.isnan(d.pvalue) == np.isnan(f.pvalue)
    if not np.isnan(f.pvalue):
        assert d.pvalue == f.pvalue
    assert f.drifted == (f.distribution_drifted or f.missingness_drifted)


# --------------------------------------------------------------------------------------------
# command line


def _csv_with_gaps(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(20)
    lines_s, lines_t = ["x,city"], ["x,city"]
    for i in range(300):
        xs = "" if i % 20 == 0 else f"{rng.normal():.4f}"  # 5% empty
        xt = "" if i % 5 == 0 else f"{rng.normal():.4f}"  # 20% empty
        city = "" if i % 50 == 0 else str(rng.choice(["a", "b"]))
        lines_s.append(f"{xs},{city}")
        lines_t.append(f"{xt},{rng.choice(['a', 'b'])}")
    s, t = tmp_path / "s.csv", tmp_path / "t.csv"
    s.write_text("\n".join(lines_s) + "\n")
    t.write_text("\n".join(lines_t) + "\n")
    return s, t


def test_cli_reads_empty_cells_as_missing_and_tests_them(tmp_path: Path) -> None:
    s, t = _csv_with_gaps(tmp_path)
    runner = CliRunner()
    base = ["shift", "test", "--source", str(s), "--target", str(t), "--method", "ks"]
    out = runner.invoke(app, [*base, "--json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout)
    feats = {f["name"]: f for f in payload["features"]["features"]}
    assert payload["features"]["missing"] == "test"
    assert feats["x"]["missingness"]["n_missing_source"] == 15
    assert feats["x"]["missingness"]["n_missing_target"] == 60
    assert feats["x"]["missingness"]["drifted"] is True
    assert feats["x"]["n_source"] == 285
    assert feats["city"]["missingness"]["fraction_target"] == 0.0
    assert feats["city"]["missingness"]["test"] == "fisher"
    table = runner.invoke(app, base)
    assert table.exit_code == 0, table.output
    assert "DRIFT (missing)" in table.stdout
    assert "5.0→20.0%" in table.stdout
    dropped = runner.invoke(app, [*base, "--missing", "drop", "--json"])
    assert json.loads(dropped.stdout)["features"]["drift_detected"] is False
    raised = runner.invoke(app, [*base, "--missing", "raise"])
    assert raised.exit_code == 3
    assert f"column 'x' of the source table ({s}) holds 15 missing" in raised.stderr
    bad = runner.invoke(app, [*base, "--missing", "zero"])
    assert bad.exit_code == 2
    assert "--missing 'zero' is unknown" in bad.stderr
