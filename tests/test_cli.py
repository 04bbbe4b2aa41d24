from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

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


def test_checkup_json_is_machine_readable() -> None:
    result = runner.invoke(app, ["checkup", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    names = [stage["name"] for stage in payload["stages"]]
    assert names[0] == "environment"


def test_checkup_report(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "report.html"
    result = runner.invoke(app, ["checkup", "--report", str(out)])
    assert result.exit_code == 0, result.output
    assert "Checkup summary" in out.read_text()


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
