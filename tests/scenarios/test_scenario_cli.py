"""``nndoctor scenario …`` for the shift scenarios, through typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from nndoctor.cli import app
from nndoctor.scenarios import flu_season

runner = CliRunner()


def test_list_names_every_scenario() -> None:
    result = runner.invoke(app, ["scenario", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["scenario"]: r for r in json.loads(result.stdout)}
    assert {"cartoon-digits", "flu-season", "soda-regions", "drifting-stream"} <= set(rows)
    assert rows["flu-season"]["kind"] == "label"
    assert rows["soda-regions"]["kind"] == "concept"
    human = runner.invoke(app, ["scenario", "list"])
    assert human.exit_code == 0
    assert "cartoon-digits" in human.stdout


def test_flu_season_writes_tables_readme_and_truth(tmp_path: Path) -> None:
    out = tmp_path / "flu"
    result = runner.invoke(
        app, ["scenario", "flu-season", "--out", str(out), "--n-source", "300", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["scenario"]["kind"] == "label"
    assert payload["scenario"]["truth"]["target_prior"]["flu"] == 0.35
    assert sorted(payload["files"]) == ["readme", "source", "target", "truth"]
    source = pd.read_csv(payload["files"]["source"])
    expected = flu_season(n_source=300, random_state=0).source
    pd.testing.assert_frame_equal(source, expected, check_dtype=False)
    readme = (out / "README.md").read_text()
    assert "label shift" in readme
    assert "target_prior" in readme
    assert json.loads((out / "truth.json").read_text())["kind"] == "label"


def test_stream_writes_stream_csv_and_report(tmp_path: Path) -> None:
    report = tmp_path / "r.html"
    result = runner.invoke(
        app,
        ["scenario", "drifting-stream", "-o", str(tmp_path / "s"), "--n-stream", "400",
         "--report", str(report)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s" / "stream.csv").is_file()
    assert not (tmp_path / "s" / "target.csv").exists()
    assert "Files written" in result.stdout
    assert "data:image/png;base64," in report.read_text()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["soda-regions", "--target-region", "texas"], 2, "choose one of: midwest"),
        (["flu-season", "--target-prior", "a,b"], 2, "comma-separated"),
        (["flu-season", "--target-prior", "0.5,0.5"], 2, "3 probabilities"),
        (["cartoon-digits", "--n-source", "1500"], 2, "at most 1797"),
        (["drifting-stream", "--drift-start", "0.9", "--drift-end", "0.1"], 2, "before"),
    ],
)
def test_errors_are_one_line(args: list[str], code: int, message: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["scenario", *args, "--out", str(tmp_path / "x")])
    assert result.exit_code == code
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_out_must_not_be_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("")
    result = runner.invoke(app, ["scenario", "soda-regions", "--out", str(f)])
    assert result.exit_code == 2
    assert "not a directory" in result.stderr
