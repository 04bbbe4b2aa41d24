"""BBSD on model outputs, the reusable ShiftDetector, report sections and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from nndoctor.cli import app
from nndoctor.exceptions import DataValidationError, InvalidParameterError, SmallSampleWarning
from nndoctor.report import to_sections
from nndoctor.shift import ShiftDetector, bbsd_test, compare_samples, mmd_test

ALPHA = 0.05
REPS = 500
SE = (ALPHA * (1 - ALPHA) / REPS) ** 0.5


def _probs(rng: np.random.Generator, n: int, prior: list[float]) -> np.ndarray:
    """Outputs of a fixed model on inputs whose labels follow ``prior`` (P(x|y) unchanged)."""
    y = rng.choice(len(prior), size=n, p=prior)
    logits = rng.normal(size=(n, len(prior)))
    logits[np.arange(n), y] += 1.5
    e = np.exp(logits)
    return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("method", ["both", "chi2", "ks"])
def test_bbsd_fpr_under_h0(method: str) -> None:
    rng = np.random.default_rng(0)
    prior = [0.5, 0.3, 0.2]
    pvals = np.array(
        [
            bbsd_test(_probs(rng, 80, prior), _probs(rng, 80, prior), method=method).pvalue  # type: ignore[arg-type]
            for _ in range(REPS)
        ]
    )
    assert pvals.min() > 0
    assert abs(np.mean(pvals <= ALPHA) - ALPHA) < 3 * SE


def test_bbsd_sees_label_shift_and_is_deterministic() -> None:
    rng = np.random.default_rng(1)
    src = _probs(rng, 600, [0.5, 0.3, 0.2])
    tgt = _probs(rng, 600, [0.2, 0.3, 0.5])
    a, b = bbsd_test(src, tgt), bbsd_test(src, tgt)
    assert a.drift_detected
    assert a.chi2_pvalue < 1e-6
    assert a.pvalue == b.pvalue
    assert a.to_dict()["source_counts"] == np.bincount(src.argmax(1), minlength=3).tolist()


def test_bbsd_merges_empty_classes() -> None:
    rng = np.random.default_rng(2)

    def outputs(n: int) -> np.ndarray:
        p = rng.uniform(0.3, 0.7, size=n)
        return np.column_stack((p, 0.98 - p, np.full(n, 0.01), np.full(n, 0.01)))

    res = bbsd_test(outputs(200), outputs(200))
    assert res.source_counts[2:].sum() == 0  # classes 2 and 3 never predicted
    assert res.chi2_dof == 1
    assert res.chi2_pvalue > 0.001


def test_bbsd_bad_input() -> None:
    good = np.full((5, 3), 1 / 3)
    with pytest.raises(DataValidationError, match="sum to 1"):
        bbsd_test(good, np.ones((5, 3)))
    with pytest.raises(DataValidationError, match="has 2 classes but 3"):
        bbsd_test(good, np.full((5, 2), 0.5))
    with pytest.raises(InvalidParameterError, match="method 'x' is unknown"):
        bbsd_test(good, good, method="x")  # type: ignore[arg-type]
    with pytest.warns(SmallSampleWarning):
        res = bbsd_test(good[:1], good)
    assert np.isnan(res.pvalue)


def test_detector_mmd_matches_function_and_fpr() -> None:
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(60, 3))
    det = ShiftDetector("mmd", options={"n_permutations": 99}, random_state=0).fit(ref)
    batch = rng.normal(size=(40, 3)) + 0.3
    res = det.test(batch)
    same = mmd_test(ref, batch, bandwidth=det.bandwidth_, n_permutations=99)
    assert res.statistic == pytest.approx(same.statistic, rel=1e-9, abs=1e-12)
    # validity is over draws of reference and batch: refit on a fresh reference each time
    hits = [
        det.fit(rng.normal(size=(30, 3))).test(rng.normal(size=(30, 3))).pvalue <= ALPHA
        for _ in range(REPS)
    ]
    assert abs(np.mean(hits) - ALPHA) < 3 * SE


def test_detector_other_methods_and_errors() -> None:
    rng = np.random.default_rng(4)
    ref = pd.DataFrame({"a": rng.normal(size=200), "b": rng.choice(["u", "v"], 200)})
    det = ShiftDetector("features", random_state=0).fit(ref)
    shifted = ref.assign(a=ref["a"] + 1.0)
    assert det.test(shifted).drift_detected
    probs = _probs(rng, 300, [0.5, 0.5])
    bb = ShiftDetector("bbsd").fit(probs)
    assert bb.test(_probs(rng, 300, [0.1, 0.9])).drift_detected
    net = torch.nn.Sequential(torch.nn.Linear(2, 3))
    kept = ShiftDetector("bbsd", options={"model": net}).fit(rng.normal(size=(300, 2)))
    assert kept.test(rng.normal(size=(300, 2)) + np.array([3.0, 0.0])).drift_detected
    with pytest.raises(InvalidParameterError, match="not fitted"):
        ShiftDetector("mmd").test(np.zeros((3, 2)))
    with pytest.raises(InvalidParameterError, match="method 'foo' is unknown"):
        ShiftDetector("foo").fit(np.zeros((3, 2)))  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="not supported by the MMD detector"):
        ShiftDetector("mmd", options={"bogus": 1}).fit(np.zeros((3, 2)))
    det2 = ShiftDetector("mmd").fit(np.zeros((5, 2)))
    with pytest.raises(DataValidationError, match="3 features but X_ref has 2"):
        det2.test(np.zeros((5, 3)))


def test_report_sections_and_json() -> None:
    rng = np.random.default_rng(5)
    src = pd.DataFrame(rng.normal(size=(200, 2)), columns=["p", "q"])
    tgt = pd.DataFrame(rng.normal(size=(200, 2)) + np.array([0.0, 0.8]), columns=["p", "q"])
    rep = compare_samples(src, tgt, n_permutations=99, random_state=0)
    sections = to_sections(rep, figures=True)
    titles = [s.title for s in sections]
    assert titles[0] == "Shift tests"
    assert "Per-feature drift (sorted by effect size)" in titles
    assert sections[0].figures  # distributions of the most-drifted features
    mmd_section = next(s for s in sections if s.title == "Two-sample test (MMD)")
    assert mmd_section.figures  # the null distribution with the observed statistic
    feats = next(s for s in sections if s.title.startswith("Per-feature"))
    assert feats.table[0]["feature"] == "q"
    json.loads(rep.to_json())


def _tables(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(6)
    src = pd.DataFrame(
        {"a": rng.normal(size=150), "b": rng.normal(size=150), "y": rng.integers(0, 2, 150)}
    )
    tgt = pd.DataFrame(
        {"a": rng.normal(size=150) + 1.0, "b": rng.normal(size=150), "y": rng.integers(0, 2, 150)}
    )
    s, t = tmp_path / "s.csv", tmp_path / "t.csv"
    src.to_csv(s, index=False)
    tgt.to_csv(t, index=False)
    return s, t


def test_cli_shift_test_json_and_report(tmp_path: Path) -> None:
    s, t = _tables(tmp_path)
    runner = CliRunner()
    out = runner.invoke(
        app, ["shift", "test", "--source", str(s), "--target", str(t), "--label", "y",
              "--permutations", "99", "--json"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout)
    assert payload["drift_detected"] is True
    assert payload["methods"] == ["features", "mmd"]
    assert [f["name"] for f in payload["features"]["features"]] == ["a", "b"]
    html = tmp_path / "r.html"
    out = runner.invoke(
        app, ["shift", "test", "--source", str(s), "--target", str(t), "--method", "ks",
              "--report", str(html)],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "Per-feature drift" in out.stdout
    assert "data:image/png;base64" in html.read_text()


def test_cli_errors_exit_codes(tmp_path: Path) -> None:
    s, t = _tables(tmp_path)
    runner = CliRunner()
    bad = runner.invoke(app, ["shift", "test", "--source", str(s), "--target", str(t),
                              "--method", "energy"])  # fmt: skip
    assert bad.exit_code == 2
    assert "--method 'energy' is unknown" in bad.stderr
    nolabel = runner.invoke(app, ["shift", "test", "--source", str(s), "--target", str(t),
                                  "--label", "zzz"])  # fmt: skip
    assert nolabel.exit_code == 2
    txt = tmp_path / "txt.csv"
    pd.DataFrame({"a": ["x"] * 5, "b": [1.0] * 5, "y": [0] * 5}).to_csv(txt, index=False)
    data = runner.invoke(app, ["shift", "test", "--source", str(s), "--target", str(txt),
                               "--method", "mmd"])  # fmt: skip
    assert data.exit_code == 3
    assert "holds text" in data.stderr or "non-numeric" in data.stderr


def test_a_model_given_to_the_shift_tests_is_left_as_it_was() -> None:
    """BBSD runs the user's network in eval mode without gradients, on a copy of each batch:
    the network's training mode is restored and a read-only table (``to_numpy()`` views, Dask
    chunks) raises no warning."""
    import warnings

    rng = np.random.default_rng(0)
    src = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    tgt = pd.DataFrame(rng.normal(size=(200, 3)) + np.array([3.0, 0, 0]), columns=["a", "b", "c"])
    torch.manual_seed(0)  # the network's initialization decides what BBSD can see
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 2))
    net.train()
    before = [p.detach().clone() for p in net.parameters()]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep = compare_samples(src, tgt, method="bbsd", model=net, random_state=0)
    assert rep.bbsd is not None
    assert rep.bbsd.n_source == 200
    assert net.training  # was left in eval mode before
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
