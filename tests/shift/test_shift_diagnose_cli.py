"""`nndoctor shift diagnose` / `shift stream`, the report sections and the checkup stage."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from nndoctor.cli import app
from nndoctor.report import render_html, to_sections
from nndoctor.scenarios import drifting_stream, soda_regions
from nndoctor.shift import ShiftMonitor, adapt_on_drift, decompose_accuracy_drop, diagnose
from nndoctor.shift._simulate import make_shift

runner = CliRunner()


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def soda_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    sc = soda_regions(n_source=1000, n_target=600, random_state=0)
    d = tmp_path_factory.mktemp("soda")
    target = sc.target.copy()
    target.loc[target.index[150:], sc.label] = None  # 150 labeled target rows
    sc.source.to_csv(d / "s.csv", index=False)
    target.to_csv(d / "t.csv", index=False)
    return d / "s.csv", d / "t.csv", sc.label


def test_diagnose_cli_json_and_report(soda_files: tuple[Path, Path, str], tmp_path: Path) -> None:
    s, t, label = soda_files
    out = tmp_path / "r.html"
    res = runner.invoke(
        app,
        ["shift", "diagnose", "--source", str(s), "--target", str(t), "--label", label,
         "--json", "--report", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["kind"] == "concept"
    assert payload["n_target_labels"] == 150
    assert payload["recommendation"]["treatment"].startswith("Get target labels")
    html = out.read_text()
    assert "Shift diagnosis" in html
    assert "Recommended treatment" in html


def test_diagnose_cli_table_without_labels(tmp_path: Path) -> None:
    sc = soda_regions(n_source=600, n_target=300, random_state=1)
    sc.source.to_csv(tmp_path / "s.csv", index=False)
    sc.target.drop(columns=[sc.label]).to_csv(tmp_path / "t.csv", index=False)
    res = runner.invoke(
        app,
        ["shift", "diagnose", "--source", str(tmp_path / "s.csv"), "--target",
         str(tmp_path / "t.csv"), "--label", sc.label],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "Kind: none" in res.stdout
    assert "cannot be ruled out" in " ".join(res.stdout.split())


def test_diagnose_cli_errors(soda_files: tuple[Path, Path, str]) -> None:
    s, t, _ = soda_files
    res = runner.invoke(
        app, ["shift", "diagnose", "--source", str(s), "--target", str(t), "--label", "nope"]
    )
    assert res.exit_code == 2  # a column named on the command line that the table lacks
    assert "'nope' is not in the source table" in res.output
    res = runner.invoke(
        app, ["shift", "diagnose", "--source", str(s), "--target", "missing.csv", "--label", "x"]
    )
    assert res.exit_code == 2


def test_stream_cli(tmp_path: Path) -> None:
    sc = drifting_stream(n_source=600, n_stream=2400, random_state=0)
    table = pd.concat([sc.source, sc.target], ignore_index=True).sample(frac=1.0, random_state=0)
    table.to_csv(tmp_path / "stream.csv", index=False)  # shuffled: the command sorts by time
    res = runner.invoke(
        app,
        ["shift", "stream", str(tmp_path / "stream.csv"), "--time-column", "t", "--label", "y",
         "--reference-rows", "600", "--batch-size", "200", "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["drift_detected"] is True
    assert payload["kind"] == "concept"
    first = payload["changes"][0]
    start = sc.truth["drift_start_t"]
    assert int(first["time"]) >= start - 200  # never long before the drift begins
    res = runner.invoke(app, ["shift", "stream", str(tmp_path / "stream.csv"), "--time-column",
                              "t", "--prediction-column", "nope"])  # fmt: skip
    assert res.exit_code == 2  # a column named on the command line that the table lacks


def test_sections_render_with_figures() -> None:
    case = make_shift("mixed", n_target_labels=200, random_state=0)
    d = diagnose(case.source_X, case.source_y, case.target_X, case.target_y, random_state=0)
    rng = np.random.default_rng(0)
    mon = ShiftMonitor().fit(rng.normal(size=(200, 2)))
    for t in range(5):
        mon.update(rng.normal(size=(50, 2)) + (3.0 if t > 2 else 0.0))

    def batch(flip: bool) -> tuple[np.ndarray, np.ndarray]:
        X = rng.normal(size=(100, 2))
        y = (X[:, 0] > 0).astype(int)
        return X, (1 - y if flip else y)

    from sklearn.linear_model import LogisticRegression

    ad = adapt_on_drift(LogisticRegression(), batch(False), [batch(t > 4) for t in range(10)])
    dec = decompose_accuracy_drop(
        np.eye(2)[[0, 1] * 20] * 0.8 + 0.1, [0, 1] * 20, np.eye(2)[[0, 1] * 10] * 0.8 + 0.1,
        [1, 0] * 10, random_state=0,
    )  # fmt: skip
    titles = []
    for obj in (d, mon.report(), ad, dec, d.accuracy_gap, d.conditional):
        sections = to_sections(obj, figures=True)
        titles += [s.title for s in sections]
        assert "<html" in render_html("x", sections).lower()
    assert {"Shift diagnosis", "Stream monitor", "Adaptation to drift"} <= set(titles)
    assert any(f for s in to_sections(d, figures=True) for f in s.figures)


def test_checkup_stage_scores_every_scenario() -> None:
    from nndoctor.checkup import CheckupContext
    from nndoctor.checkup._shift import shift_stage

    out = shift_stage(CheckupContext(random_state=0))
    table = out.results[0]
    assert [r.scenario for r in table.rows] == [
        "cartoon_digits", "flu_season", "soda_regions", "drifting_stream",
    ]  # fmt: skip
    assert all(r.right for r in table.rows), table.rows
    soda = table.rows[2]
    assert soda.diagnosis_without_labels.startswith("none")
    assert soda.diagnosis_with_labels == "concept"
    assert all(row.stage == "shift" for row in out.summary)
    # as in the summary: every scenario has a shift, diagnosed right: a warning, not "ok"
    assert {row.severity for row in out.summary} == {"warning"}
    assert to_sections(table)[0].status == "warning"


def test_checkup_stage_on_user_tables(soda_files: tuple[Path, Path, str]) -> None:
    from nndoctor.checkup import CheckupContext
    from nndoctor.checkup._shift import shift_stage

    s, t, label = soda_files
    out = shift_stage(CheckupContext(source=str(s), target=str(t), label=label))
    assert len(out.summary) == 1
    assert out.summary[0].finding == "concept shift"
    assert out.results[0].kind == "concept"
