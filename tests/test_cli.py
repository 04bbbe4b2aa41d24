from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from nndoctor import __version__
from nndoctor.cli import app

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"nndoctor {__version__}"


def test_no_arguments_shows_help() -> None:
    result = runner.invoke(app, [])
    assert result.exit_code == 2
    assert "checkup" in result.output


@pytest.fixture(scope="module")
def checkup_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path]:
    """The full checkup on the embedded default, run once for every test that reads it."""
    out = tmp_path_factory.mktemp("checkup") / "sub" / "report.html"
    return runner.invoke(app, ["checkup", "--json", "--report", str(out)]), out


def test_checkup_json_is_machine_readable(checkup_run: tuple[Result, Path]) -> None:
    result, _ = checkup_run
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    names = [stage["name"] for stage in payload["stages"]]
    assert names[0] == "environment"
    assert len(names) == len(set(names))
    for stage in payload["stages"]:
        assert stage["summary"], f"stage {stage['name']} has no summary row"
        for row in stage["summary"]:
            assert row["severity"] in {"ok", "info", "warning", "error"}


def test_checkup_report(checkup_run: tuple[Result, Path]) -> None:
    result, out = checkup_run
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "Checkup summary" in page
    assert page.rstrip().endswith("</html>")
    # the table of contents tells apart sections of the same kind (before/after, per scenario)
    titles = re.findall(r'<li><a href="#s\d+">([^<]*)</a>', page)
    assert len(titles) > 10
    assert len(titles) == len(set(titles)), [t for t in titles if titles.count(t) > 1]
    assert "default init: Training monitor: findings" in titles


def test_checkup_has_one_verdict_everywhere(checkup_run: tuple[Result, Path]) -> None:
    """Summary, header counts, badges and sections agree (the header counted 4 errors where
    the summary had 1; soda_regions was an error in its sections and a warning in the summary;
    the stream said "no change" under a summary that says drift was caught)."""
    from _checkup_helpers import check_one_verdict

    result, out = checkup_run
    page = out.read_text()
    rows = check_one_verdict(result.stdout, page)
    stream = next(r for r in rows if r["finding"].startswith("drifting_stream:"))
    assert "caught at t =" in stream["finding"]
    adapt = re.search(r'data-status="(\w+)">\s*<h2>drifting_stream: Adaptation to drift', page)
    assert adapt is not None
    assert adapt.group(1) == stream["severity"]
    for title in re.findall(r"<h2>(drifting_stream: [^<]*)</h2>", page):
        if "Stream monitor" in title or "Monitor events" in title:
            assert "since the last retraining" in title


def test_checkup_writes_default_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["checkup", "--input-shape", "0"])
    assert result.exit_code == 2
    assert "--input-shape '0'" in result.stderr
    assert not (tmp_path / "checkup-report").exists()


def test_checkup_needs_both_tables() -> None:
    result = runner.invoke(app, ["checkup", "--source", "a.csv"])
    assert result.exit_code == 2
    assert "--source and --target" in result.stderr


def test_probe_refuses_inputs_with_input_shape_before_loading_the_model() -> None:
    """--inputs and --input-shape together are a usage error found before any work: the
    model (here a file that does not exist) is not loaded first."""
    result = runner.invoke(
        app,
        ["stability", "probe", "--model", "no-such-file.py:net", "--inputs", "b.pt",
         "--input-shape", "4"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--inputs and --input-shape both give the batch" in result.stderr


def test_usage_error_is_one_line_exit_2() -> None:
    result = runner.invoke(app, ["checkup", "--fail-on", "bogus"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "nndoctor: error: --fail-on 'bogus' is unknown; choose one of: error, never, warning"
    ]


def test_debug_shows_traceback() -> None:
    result = runner.invoke(app, ["--debug", "checkup", "--fail-on", "bogus"])
    assert result.exit_code != 0
    assert result.exception is not None


def test_python_dash_m() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "nndoctor", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"nndoctor {__version__}"


def test_checkup_on_user_model_and_tables(tmp_path: Path) -> None:
    """The checkup runs every stage on the user's model and tables, not on the default."""
    from nndoctor.scenarios import flu_season

    files = flu_season(random_state=1).write(tmp_path / "flu")
    model_file = tmp_path / "net.py"
    model_file.write_text(
        "import torch.nn as nn\n"
        "def build():\n"
        "    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))\n"
    )
    args = ["checkup", "--model", f"{model_file}:build", "--input-shape", "5"]
    args += ["--source", files.files["source"], "--target", files.files["target"]]
    args += ["--label", "diagnosis", "--json", "--report", str(tmp_path / "r.html")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    stages = {s["name"]: s for s in json.loads(result.stdout)["stages"]}
    assert "net.py:build" in stages["stability"]["summary"][0]["finding"]
    monitor_text = json.dumps(stages["monitor"])
    assert "layer 16" not in monitor_text  # the default digits MLP has 17 modules, ours 3
    assert stages["shift"]["summary"][0]["finding"] == "label shift"


def test_checkup_user_model_with_wrong_head_is_a_usage_error(tmp_path: Path) -> None:
    from nndoctor.scenarios import flu_season

    files = flu_season(random_state=1).write(tmp_path / "flu")
    model_file = tmp_path / "net.py"
    model_file.write_text("import torch.nn as nn\ndef build():\n    return nn.Linear(5, 7)\n")
    args = ["checkup", "--model", f"{model_file}:build", "--input-shape", "5"]
    args += [
        "--source",
        files.files["source"],
        "--target",
        files.files["target"],
        "--label",
        "diagnosis",
    ]
    result = runner.invoke(app, [*args, "--report", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    assert "3-way head" in result.stderr
    assert not (tmp_path / "r.html").exists()


def test_version_and_help_import_nothing_heavy() -> None:
    """``--version`` and ``--help`` load no torch, NumPy, pandas, SciPy, scikit-learn or
    matplotlib (they took ~5 s: cli.py imported every command's dependencies)."""
    code = (
        "import sys\n"
        "from nndoctor.cli import app\n"
        "for args in (['--version'], ['--help'], ['stability', '--help']):\n"
        "    try:\n"
        "        app(args, prog_name='nndoctor')\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('torch', 'numpy', 'pandas', 'scipy', 'sklearn', 'matplotlib')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip() == "[]", out.stderr
    assert "shift" in out.stdout  # the lazily loaded sub-apps are listed
    result = runner.invoke(app, ["shift", "--help"])
    assert result.exit_code == 0
    assert "diagnose" in result.stdout  # and their commands are there when asked for


def test_a_missing_label_names_the_closest_column(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({f"feature_{i}": range(50) for i in range(12)}).assign(
        Diagnosis=["a", "b"] * 25
    )
    frame.to_csv(tmp_path / "s.csv", index=False)
    args = ["checkup", "--source", str(tmp_path / "s.csv"), "--target", str(tmp_path / "s.csv")]
    result = runner.invoke(app, [*args, "--label", "diagnosis"])
    assert result.exit_code == 2
    assert "did you mean 'Diagnosis'?" in result.stderr
    result = runner.invoke(app, [*args, "--label", "y"])
    assert "'Diagnosis'" in result.stderr  # the only column that looks like a label
    assert "feature_3" not in result.stderr
