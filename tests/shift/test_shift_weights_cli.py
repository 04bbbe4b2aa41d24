"""``nndoctor shift weights`` and ``nndoctor shift labels`` through typer's CliRunner."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nndoctor.cli import app
from nndoctor.report import to_sections
from nndoctor.shift import ImportanceWeighter, LabelShiftEstimator

runner = CliRunner()


@pytest.fixture
def tables(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    src = pd.DataFrame(rng.normal(size=(300, 2)), columns=["a", "b"]).assign(id=range(300))
    tgt = pd.DataFrame(rng.normal(size=(200, 2)) + np.array([0.8, 0.0]), columns=["a", "b"])
    tgt = tgt.assign(id=range(200))

    # probabilities of a 3-class model with exact posteriors, and a label-shifted target
    def probs(prior: list[float], n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.choice(3, size=n, p=prior)
        x = rng.normal(3.0 * y, 1.0)
        lik = np.exp(-((x[:, None] - 3.0 * np.arange(3)) ** 2) / 2)
        return lik / lik.sum(1, keepdims=True), y

    Ps, ys = probs([1 / 3, 1 / 3, 1 / 3], 600)
    Pt, _ = probs([0.7, 0.2, 0.1], 600)
    cols = ["cat", "dog", "fox"]
    paths = {k: tmp_path / f"{k}.csv" for k in ("src", "tgt", "sp", "tp", "sp_names")}
    src.to_csv(paths["src"], index=False)
    tgt.to_csv(paths["tgt"], index=False)
    pd.DataFrame(Ps, columns=cols).assign(y=ys).to_csv(paths["sp"], index=False)
    pd.DataFrame(Ps, columns=cols).assign(y=np.array(cols)[ys]).to_csv(
        paths["sp_names"], index=False
    )
    pd.DataFrame(Pt, columns=cols).to_csv(paths["tp"], index=False)
    return paths


def test_shift_weights_writes_a_column(tables: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out" / "weighted.csv"
    html = tmp_path / "w.html"
    args = ["shift", "weights", "--source", str(tables["src"]), "--target", str(tables["tgt"]),
            "--exclude", "id", "--out", str(out), "--json", "--report", str(html)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["method"] == "classifier"
    assert 0 < payload["ess_ratio"] <= 1
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["a", "b", "id", "weight"]
    assert frame["weight"].mean() == pytest.approx(1.0)
    assert np.corrcoef(frame["weight"], frame["a"])[0, 1] > 0.8  # target sits at larger a
    page = html.read_text()
    assert "Importance weights" in page
    assert "data:image/png;base64" in page


def test_shift_weights_reads_each_table_once(
    tables: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the source table was read twice: once to write it back out, once to compare it
    reads: list[str] = []
    read_csv = pd.read_csv

    def counting(path: Any, *args: Any, **kwargs: Any) -> pd.DataFrame:
        reads.append(Path(path).name)
        return read_csv(path, *args, **kwargs)

    monkeypatch.setattr(pd, "read_csv", counting)
    args = ["shift", "weights", "--source", str(tables["src"]), "--target", str(tables["tgt"]),
            "--out", str(tmp_path / "w.csv")]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(reads) == ["src.csv", "tgt.csv"]


def test_shift_weights_errors_have_exit_codes(tables: dict[str, Path], tmp_path: Path) -> None:
    base = ["shift", "weights", "--source", str(tables["src"]), "--target", str(tables["tgt"]),
            "--out", str(tmp_path / "w.csv")]  # fmt: skip
    bad = runner.invoke(app, [*base, "--method", "magic"])
    assert bad.exit_code == 2
    assert "choose one of" in bad.stderr
    nan_table = tmp_path / "nan.csv"
    pd.read_csv(tables["tgt"]).assign(a=np.nan).to_csv(nan_table, index=False)
    args = ["shift", "weights", "--source", str(tables["src"]), "--target", str(nan_table),
            "--out", str(tmp_path / "w.csv")]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 3
    assert "NaN" in result.stderr


@pytest.mark.parametrize("source", ["sp", "sp_names"])
def test_shift_labels(tables: dict[str, Path], tmp_path: Path, source: str) -> None:
    adjusted = tmp_path / "adj.csv"
    args = ["shift", "labels", "--source-probs", str(tables[source]), "--target-probs",
            str(tables["tp"]), "--label", "y", "--n-bootstrap", "20", "--json",
            "--adjusted-out", str(adjusted)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["method"] == "em-bcts"
    np.testing.assert_allclose(payload["target_prior"], [0.7, 0.2, 0.1], atol=0.08)
    assert len(payload["ci_low"]) == 3
    adj = pd.read_csv(adjusted)
    assert list(adj.columns) == ["cat", "dog", "fox"]
    np.testing.assert_allclose(adj.sum(axis=1), 1.0)


def test_shift_labels_table_and_errors(tables: dict[str, Path]) -> None:
    args = ["shift", "labels", "--source-probs", str(tables["sp"]), "--target-probs",
            str(tables["tp"]), "--label", "y", "--method", "bbse-hard",
            "--n-bootstrap", "0"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Label shift (bbse-hard)" in result.stdout
    assert "fox" in result.stdout  # classes shown by their column names, not indices
    payload = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert payload["class_names"] == ["cat", "dog", "fox"]
    missing = runner.invoke(app, [a if a != "y" else "nope" for a in args])
    assert missing.exit_code == 2
    assert "nope" in missing.stderr


def test_report_sections_with_figures() -> None:
    rng = np.random.default_rng(0)
    iw = ImportanceWeighter(random_state=0).fit(rng.normal(size=(100, 2)), rng.normal(size=(80, 2)))
    (section,) = to_sections(iw.summary(), figures=True)
    assert section.status == "ok"
    assert len(section.figures) == 1
    assert "weights" not in section.payload
    P = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8]] * 10)
    y = np.array([0, 1, 0, 1] * 10)
    res = LabelShiftEstimator(n_bootstrap=10, random_state=0).fit(P, y).estimate(P[:12])
    (label_section,) = to_sections(res, figures=True)
    assert len(label_section.table) == 2
    assert [row["class"] for row in label_section.table] == ["0", "1"]
    named = dataclasses.replace(res, class_names=("spam", "ham"))
    assert [row["class"] for row in to_sections(named)[0].table] == ["spam", "ham"]
    assert label_section.figures[0].png_base64.startswith("iVBOR")


def test_shift_labels_takes_log_probabilities(tables: dict[str, Path], tmp_path: Path) -> None:
    logs = {}
    for key in ("sp", "tp"):
        frame = pd.read_csv(tables[key])
        cols = ["cat", "dog", "fox"]
        frame[cols] = np.log(np.maximum(frame[cols].to_numpy(), 1e-300))
        logs[key] = tmp_path / f"log_{key}.csv"
        frame.to_csv(logs[key], index=False)
    args = ["shift", "labels", "--source-probs", str(logs["sp"]), "--target-probs",
            str(logs["tp"]), "--label", "y", "--n-bootstrap", "0", "--json"]  # fmt: skip
    result = runner.invoke(app, [*args, "--inputs", "log_probs"])
    assert result.exit_code == 0, result.output
    prior = json.loads(result.stdout)["target_prior"]
    np.testing.assert_allclose(prior, [0.7, 0.2, 0.1], atol=0.08)
    wrong = runner.invoke(app, args)  # log-probabilities read as probabilities
    assert wrong.exit_code == 3
    assert "outside [0, 1]" in wrong.stderr
    bad = runner.invoke(app, [*args, "--inputs", "logs"])
    assert bad.exit_code == 2


def test_errors_name_the_users_tables_not_the_librarys_arguments(
    tables: dict[str, Path], tmp_path: Path
) -> None:
    bad = tmp_path / "bad_target.csv"
    # infinity: an error for every command (missing values are tested by `shift test`)
    pd.read_csv(tables["tgt"]).assign(b=np.inf).to_csv(bad, index=False)
    for command in (["shift", "test"], ["shift", "diagnose", "--label", "id"]):
        args = [*command, "--source", str(tables["src"]), "--target", str(bad)]
        result = runner.invoke(app, args)
        assert result.exit_code == 3, result.output
        assert f"the target table ({bad})" in result.stderr
        assert " Y " not in result.stderr
        assert "target_X" not in result.stderr
