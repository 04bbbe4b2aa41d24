"""recommend_init, the stability CLI, the scenario commands and the checkup stage."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from typer.testing import CliRunner

from nndoctor.cli import app
from nndoctor.scenarios import digits_mlp
from nndoctor.stability import probe, recommend_init

runner = CliRunner()


def test_recommend_fixes_the_digits_mlp_and_applies() -> None:
    model = digits_mlp()
    x = torch.randn(128, 64, generator=torch.Generator().manual_seed(0))
    rec = recommend_init(model, x, schemes=["xavier_uniform", "kaiming_normal", "lsuv"])
    assert rec.before.verdict == "vanishing"
    assert rec.after.verdict == "healthy"
    assert rec.scheme in ("kaiming_normal", "lsuv")
    assert [c.score for c in rec.candidates] == sorted(c.score for c in rec.candidates)
    assert probe(model, x).verdict == "vanishing"  # not applied
    applied = recommend_init(model, x, schemes=[rec.scheme], apply=True)
    assert applied.applied
    assert probe(model, x).forward_gain == applied.after.forward_gain
    assert rec.improvement > 1


def test_cli_scenario_deep_chain_json() -> None:
    out = runner.invoke(
        app, ["scenario", "deep-chain", "--depth", "30", "--weight", "0.2", "--json"]
    )
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout)
    assert payload["verdict"] == "vanishing"
    assert abs(payload["forward_gain"] / 0.2**30 - 1) < 1e-6


def test_cli_probe_audit_symmetry_recommend(tmp_path: Path) -> None:
    spec = tmp_path / "net.py"
    spec.write_text(
        "from torch import nn\n"
        "def make():\n"
        "    return nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 3))\n"
    )
    base = ["--model", f"{spec}:make"]
    out = runner.invoke(
        app, ["stability", "probe", *base, "--input-shape", "12", "--dtype", "float64", "--json"]
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["dtype"] == "float64"
    out = runner.invoke(app, ["stability", "audit", *base, "--init", "xavier_uniform", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["layers"][0]["scheme"] == "xavier_uniform"
    out = runner.invoke(
        app, ["stability", "symmetry", *base, "--input-shape", "12", "--init", "constant"]
    )
    assert out.exit_code == 0, out.output
    assert "permanent" in out.stdout
    report = tmp_path / "r.html"
    out = runner.invoke(
        app, ["stability", "recommend", *base, "--input-shape", "12", "--report", str(report)]
    )
    assert out.exit_code == 0, out.output
    assert "Initialization recommendation" in report.read_text()
    assert "data:image/png;base64" in report.read_text()


def test_cli_errors_exit_codes() -> None:
    out = runner.invoke(app, ["stability", "probe", "--input-shape", "10"])
    assert out.exit_code == 3
    assert "expects 64 features" in out.stderr
    out = runner.invoke(app, ["stability", "probe", "--init", "xavier"])
    assert out.exit_code == 2
    assert "choose one of" in out.stderr
    out = runner.invoke(app, ["stability", "probe", "--input-shape", "a,b"])
    assert out.exit_code == 2


def test_cli_symmetric_mlp() -> None:
    out = runner.invoke(
        app, ["scenario", "symmetric-mlp", "--width", "8", "--steps", "20", "--json"]
    )
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout)
    assert payload["effective_units_constant"] == [1, 1]
    assert payload["effective_units_xavier"] == [8, 8]


def test_checkup_stage_fixes_and_remeasures() -> None:
    from nndoctor.checkup import CheckupContext
    from nndoctor.checkup._stability import stability_stage

    outcome = stability_stage(CheckupContext())
    first = outcome.summary[0]
    assert first.severity == "error"
    assert "vanishing" in first.finding
    assert first.effect.startswith("healthy")
    before, _audit, _, rec = outcome.results
    assert before.verdict == "vanishing"
    assert rec.after.verdict == "healthy"


def test_checkup_stage_on_a_user_model(tmp_path: Path) -> None:
    from nndoctor.checkup import CheckupContext
    from nndoctor.checkup._stability import stability_stage

    spec = tmp_path / "deep.py"
    spec.write_text(
        "from torch import nn\n"
        "def make():\n"
        "    layers = [m for _ in range(12) for m in (nn.Linear(16, 16), nn.Tanh())]\n"
        "    return nn.Sequential(*layers)\n"
    )
    ctx = CheckupContext(model_spec=f"{spec}:make", input_shape=(16,))
    outcome = stability_stage(ctx)
    assert "deep.py:make" in outcome.summary[0].finding
    assert outcome.results[3].after.verdict == "healthy"


def test_cli_recommend_speaks_cli_and_applies(tmp_path: Path) -> None:
    """The CLI tells its users about --apply (it said "pass apply=True"), and --apply FILE
    saves weights that fix the model when loaded with --weights."""
    spec = tmp_path / "net.py"
    spec.write_text(
        "import torch\nfrom torch import nn\n"
        "def make():\n"
        "    torch.manual_seed(0)\n"
        "    layers = []\n"
        "    for _ in range(6):\n"
        "        layers += [nn.Linear(16, 16), nn.ReLU()]\n"
        "    return nn.Sequential(*layers, nn.Linear(16, 3))\n"
    )
    base = ["stability", "recommend", "--model", f"{spec}:make", "--input-shape", "16"]
    out = runner.invoke(app, base)
    assert out.exit_code == 0, out.output
    text = " ".join(out.stdout.split())  # the table wraps long cells over lines
    assert "apply=True" not in text.replace("apply=True in Python", "")
    assert "--apply" in text
    saved = tmp_path / "fixed.pt"
    out = runner.invoke(app, [*base, "--apply", str(saved), "--json"])
    assert out.exit_code == 0, out.output
    after = json.loads(out.stdout)["after"]
    probe_args = ["stability", "probe", "--model", f"{spec}:make", "--input-shape", "16"]
    fixed = runner.invoke(app, [*probe_args, "--weights", str(saved), "--json"])
    assert fixed.exit_code == 0, fixed.output
    assert json.loads(fixed.stdout)["verdict"] == after["verdict"] == "healthy"


def test_cli_recommend_fail_on_judges_the_current_initialization(tmp_path: Path) -> None:
    """``stability recommend`` on an all-zeros network: the headline was "OK  Re-initialize with
    ...: the probe reads the current initialization vanishing", and ``--fail-on error`` exited
    0 where ``stability probe --fail-on error`` on the same model exits 1 (the section's status
    was that of the fixed model). The current initialization is the finding; a model whose own
    initialization is kept stays OK."""
    spec = tmp_path / "net.py"
    spec.write_text(
        "from torch import nn\n"
        "def zeros():\n"
        "    m = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 3))\n"
        "    for p in m.parameters():\n"
        "        nn.init.zeros_(p)\n"
        "    return m\n"
        "def kept():\n"
        "    return nn.Sequential(nn.Linear(12, 32), nn.LayerNorm(32), nn.GELU(),\n"
        "                         nn.Linear(32, 3))\n"
    )
    args = ["--input-shape", "12", "--fail-on", "error"]
    for command in ("probe", "recommend"):
        out = runner.invoke(app, ["stability", command, "--model", f"{spec}:zeros", *args])
        assert out.exit_code == 1, (command, out.output)
    out = runner.invoke(app, ["stability", "recommend", "--model", f"{spec}:kept", *args, "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["scheme"] == "current"
