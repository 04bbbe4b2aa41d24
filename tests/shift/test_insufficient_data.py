"""Never green on no evidence (issue 14, item 3): a test that cannot run (a 1-row target, a
column with no observed value) makes the verdict "insufficient data", a warning, in the table,
the JSON, the exit code with ``--fail-on`` and the report."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nndoctor.cli import app
from nndoctor.exceptions import SmallSampleWarning
from nndoctor.report import to_sections
from nndoctor.shift import LabelShiftEstimator, compare_samples, diagnose

runner = CliRunner()
# the commands' warnings are shown to the user, not raised (pytest makes ours errors by default)
cli_warnings = pytest.mark.filterwarnings("default::nndoctor.exceptions.SmallSampleWarning")


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(121, 3)) * [1.0, 1000.0, 0.01]
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(y=(X[:, 0] > 0).astype(int))
    frame.iloc[:120].to_csv(d / "s.csv", index=False)
    frame.iloc[120:].to_csv(d / "t1.csv", index=False)  # a one-row target
    probs = rng.dirichlet([1.0, 1.0], size=200)
    labels = (rng.random(200) < probs[:, 1]).astype(int)
    pd.DataFrame(probs, columns=["p0", "p1"]).assign(y=labels).to_csv(d / "sp.csv", index=False)
    pd.DataFrame(probs[:1], columns=["p0", "p1"]).to_csv(d / "tp1.csv", index=False)
    return d


def _run(*args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


@cli_warnings
def test_shift_test_one_row_target_is_insufficient_everywhere(tables: Path, tmp_path: Path) -> None:
    s, t = str(tables / "s.csv"), str(tables / "t1.csv")
    base = ("shift", "test", "--source", s, "--target", t, "--label", "y")
    code, out, err = _run(*base, "--report", str(tmp_path / "r.html"))
    assert code == 0, err
    assert "INSUFFICIENT DATA" in out
    assert "no test found a change." not in out
    assert "untested" in out
    assert "INSUFFICIENT DATA" in (tmp_path / "r.html").read_text()
    assert "nndoctor: warning:" in err
    assert ".py:" not in err
    code, out, _ = _run(*base, "--json")
    payload = json.loads(out)
    assert payload["insufficient_data"] is True
    assert payload["drift_detected"] is False
    assert set(payload["untested"]) == {"per-feature", "mmd"}
    assert _run(*base, "--fail-on", "warning")[0] == 1
    assert _run(*base, "--fail-on", "error")[0] == 0
    assert _run(*base, "--fail-on", "often")[0] == 2


def test_a_column_with_no_observed_value_is_untested_not_unchanged() -> None:
    rng = np.random.default_rng(1)
    src = pd.DataFrame({"a": rng.normal(size=80), "b": np.nan})
    tgt = pd.DataFrame({"a": rng.normal(size=60), "b": np.nan})
    with pytest.warns(SmallSampleWarning):
        rep = compare_samples(src, tgt, n_permutations=50, random_state=0)
    assert not rep.drift_detected
    assert rep.insufficient_data
    assert rep.untested == ("column 'b'",)
    summary = to_sections(rep)[0]
    assert summary.status == "warning"
    assert summary.verdict.startswith("INSUFFICIENT DATA")
    # enough data everywhere: green, no flag
    full = compare_samples(src[["a"]], tgt[["a"]], n_permutations=50, random_state=0)
    assert not full.insufficient_data
    assert full.untested == ()
    assert to_sections(full)[0].status == "ok"


@cli_warnings
def test_diagnose_one_row_target_is_kind_insufficient(tables: Path) -> None:
    src = pd.read_csv(tables / "s.csv")
    tgt = pd.read_csv(tables / "t1.csv")
    with pytest.warns(SmallSampleWarning, match="insufficient"):
        d = diagnose(src[["a", "b", "c"]], src["y"], tgt[["a", "b", "c"]], random_state=0)
    assert d.kind == "insufficient"
    assert not d.shift_detected
    assert to_sections(d)[0].status == "warning"
    base = ("shift", "diagnose", "--source", str(tables / "s.csv"),
            "--target", str(tables / "t1.csv"), "--label", "y")  # fmt: skip
    code, out, _ = _run(*base, "--json")
    assert code == 0
    assert json.loads(out)["kind"] == "insufficient"
    assert _run(*base, "--fail-on", "warning")[0] == 1


@cli_warnings
def test_label_shift_one_target_row_is_insufficient(tables: Path) -> None:
    sp = pd.read_csv(tables / "sp.csv")
    est = LabelShiftEstimator("em-bcts", n_bootstrap=20, random_state=0)
    est.fit(sp[["p0", "p1"]].to_numpy(), sp["y"].to_numpy())
    with pytest.warns(SmallSampleWarning):
        res = est.estimate(sp[["p0", "p1"]].to_numpy()[:1])
    assert res.insufficient_data
    assert np.isnan(res.ci_low).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # enough rows: no warning, intervals
        full = est.estimate(sp[["p0", "p1"]].to_numpy()[:50])
    assert not full.insufficient_data
    assert np.isfinite(full.ci_low).all()
    base = ("shift", "labels", "--source-probs", str(tables / "sp.csv"),
            "--target-probs", str(tables / "tp1.csv"), "--label", "y",
            "--n-bootstrap", "10")  # fmt: skip
    code, out, _ = _run(*base, "--json")
    assert code == 0
    assert json.loads(out)["insufficient_data"] is True
    assert _run(*base, "--fail-on", "warning")[0] == 1


def test_untestable_label_consistency_is_insufficient_not_covariate() -> None:
    """Too few check rows survive the w(y) thinning to run the consistency test: that was
    counted as a rejection (p = 0, "covariate"); it is no evidence either way. It was also
    listed as significant ("yes": ``not (nan > level)``, against the documented
    ``pvalue <= level``), and the advice asked for at least 40 source and 10 target rows from a
    user who had passed 46 and 60 (what was too few is the source rows left after re-weighting
    by w(y))."""
    rng = np.random.default_rng(0)
    ys = np.r_[np.zeros(6, int), np.ones(40, int)]
    Xs = rng.normal(size=(46, 2)) + np.where(ys[:, None] == 0, -2.0, 2.0)
    Xt = rng.normal(size=(60, 2)) - 2.0  # the target is all the rare class
    d = diagnose(Xs, ys, Xt, random_state=0)
    consistency = d.evidence[2]
    assert consistency.name == "label_consistency"
    assert np.isnan(consistency.pvalue)
    assert "too few to test" in consistency.detail
    assert d.kind == "insufficient"
    assert d.recommendation.action == "more data"
    assert to_sections(d)[0].status == "warning"
    assert consistency.significant is False
    assert "at least 40" not in d.recommendation.how
    assert "labeled source rows" in d.recommendation.how
    assert "w(y)" in d.recommendation.how
