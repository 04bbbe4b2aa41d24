"""The classifier two-sample test on data with missing values: level under MCAR, power against a
change of the missing rate alone, and a typed error for a classifier that rejects NaN."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from nndoctor.cli import app
from nndoctor.exceptions import DataValidationError
from nndoctor.report import to_sections
from nndoctor.shift import classifier_test, compare_samples

runner = CliRunner()


def _sample(
    rng: np.random.Generator, n: int, rate: float, shift: float = 0.0
) -> npt.NDArray[np.float64]:
    x = rng.normal(size=(n, 3)) + np.array([shift, 0.0, 0.0])
    x[:, :2][rng.random((n, 2)) < rate] = np.nan  # MCAR in the first two columns
    return x


def test_level_under_no_shift_with_mcar_missingness() -> None:
    """H0 with 25% of two columns missing at random in both samples: rejections over 60 seeds
    stay within the binomial bound of a level-alpha test."""
    alpha, trials = 0.1, 60
    rejections = 0
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        res = classifier_test(
            _sample(rng, 60, 0.25), _sample(rng, 60, 0.25), n_splits=2, importance="none",
            alpha=alpha, random_state=seed,
        )  # fmt: skip
        assert np.isfinite(res.pvalue)
        rejections += res.drift_detected
    assert rejections <= stats.binom.ppf(0.999, trials, alpha)


def test_a_change_of_the_missing_rate_alone_is_detected() -> None:
    """Same values, 5% vs 40% missing: the default classifier uses missingness as a signal."""
    detected = 0
    for seed in range(5):
        rng = np.random.default_rng(100 + seed)
        res = classifier_test(
            _sample(rng, 150, 0.05), _sample(rng, 150, 0.40), n_splits=2, alpha=0.05,
            random_state=seed,
        )  # fmt: skip
        detected += res.drift_detected
    assert detected >= 4
    # ... and the importance points at the columns whose rate moved (seed 0 shown)
    rng = np.random.default_rng(100)
    res = classifier_test(
        _sample(rng, 150, 0.05), _sample(rng, 150, 0.40), n_splits=2, random_state=0
    )
    assert max(res.feature_importances, key=res.feature_importances.__getitem__) in {"x0", "x1"}


def test_user_classifier_that_rejects_nan_gets_a_typed_error() -> None:
    rng = np.random.default_rng(0)
    X, Y = _sample(rng, 40, 0.2), _sample(rng, 40, 0.2)
    with pytest.raises(DataValidationError, match="LogisticRegression cannot handle missing") as e:
        classifier_test(X, Y, model=LogisticRegression(), random_state=0)
    counts = f"X holds {np.isnan(X).sum()} NaN and Y {np.isnan(Y).sum()}; impute them first"
    assert counts in str(e.value)
    assert "or leave model out to use the default" in str(e.value)
    # complete data: the same model runs
    full = np.nan_to_num(X), np.nan_to_num(Y)
    assert np.isfinite(classifier_test(*full, model=LogisticRegression(), random_state=0).pvalue)
    # infinity is never a missing value
    with pytest.raises(DataValidationError, match="Y holds 1 infinite value"):
        classifier_test(X, np.where(np.arange(120).reshape(40, 3) == 7, np.inf, Y))


def test_frames_with_missing_numbers_and_categories() -> None:
    rng = np.random.default_rng(3)
    src = pd.DataFrame({"a": rng.normal(size=80), "c": rng.choice(["u", "v", None], 80)})
    tgt = pd.DataFrame({"a": rng.normal(size=80), "c": rng.choice(["u", "v"], 80)})
    src.loc[::7, "a"] = None
    res = classifier_test(src, tgt, n_splits=2, random_state=0)
    assert np.isfinite(res.pvalue)
    assert set(res.feature_importances) == {"a", "c"}


def test_compare_samples_c2st_and_missing_policies(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    src = pd.DataFrame(_sample(rng, 80, 0.1), columns=["a", "b", "c"])
    tgt = pd.DataFrame(_sample(rng, 80, 0.1), columns=["a", "b", "c"])
    rep = compare_samples(src, tgt, method="c2st", random_state=0)
    assert rep.classifier is not None
    assert rep.classifier.n_source == 80
    n_nan = (int(src.isna().sum().sum()), int(tgt.isna().sum().sum()))
    assert rep.classifier.n_missing == n_nan
    verdict = to_sections(rep.classifier)[0].verdict
    assert f"Missing values ({n_nan[0]} source and {n_nan[1]} target cells)" in verdict
    dropped = compare_samples(src, tgt, method="c2st", missing="drop", random_state=0)
    complete = int((~src.isna().any(axis=1)).sum())
    assert dropped.classifier is not None
    assert dropped.classifier.n_source == complete < 80
    with pytest.raises(DataValidationError, match="column 'a' of the source table holds"):
        compare_samples(src, tgt, method="c2st", missing="raise")
    with pytest.raises(DataValidationError, match="the source table has 0 and the target"):
        compare_samples(src.assign(c=np.nan), tgt, method="c2st", missing="drop")
    # the command line: --method c2st on tables with empty cells
    s, t = tmp_path / "s.csv", tmp_path / "t.csv"
    src.to_csv(s, index=False)
    tgt.to_csv(t, index=False)
    res = runner.invoke(app, ["shift", "test", "--source", str(s), "--target", str(t),
                              "--method", "c2st", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)["classifier"]
    assert payload["n_source"] == 80
    assert payload["n_missing"] == list(n_nan)
