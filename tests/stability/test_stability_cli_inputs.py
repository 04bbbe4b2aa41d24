"""`nndoctor stability probe|symmetry|recommend --inputs FILE.pt`: a saved batch (a tensor or a
Hugging Face dict of tensors) instead of the random --input-shape batch."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from typer.testing import CliRunner

from nndoctor.cli import app

runner = CliRunner()

BERT = """
from transformers import BertConfig, BertModel

def make():
    return BertModel(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=64, vocab_size=100))
"""


def test_a_hugging_face_batch_reaches_the_model_as_keyword_arguments(tmp_path: Path) -> None:
    (tmp_path / "bert.py").write_text(BERT)
    ids = torch.randint(0, 100, (8, 16), generator=torch.Generator().manual_seed(0))
    torch.save({"input_ids": ids, "attention_mask": torch.ones_like(ids)}, tmp_path / "b.pt")
    base = ["--model", f"{tmp_path}/bert.py:make", "--inputs", str(tmp_path / "b.pt"), "--json"]
    probe = runner.invoke(app, ["stability", "probe", *base])
    assert probe.exit_code == 0, probe.output
    report = json.loads(probe.stdout)
    assert report["verdict"] == "healthy"
    assert any("attention.self.query" in layer["name"] for layer in report["layers"])
    sym = runner.invoke(app, ["stability", "symmetry", *base])
    assert sym.exit_code == 0, sym.output


def test_bad_inputs_files_are_one_line_errors(tmp_path: Path) -> None:
    base = ["stability", "probe", "--model", "torch.nn:Identity", "--inputs"]
    missing = runner.invoke(app, [*base, str(tmp_path / "nope.pt")])
    assert missing.exit_code == 2
    assert "does not exist" in missing.stderr
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    wrong = runner.invoke(app, [*base, str(tmp_path / "list.pt")])
    assert wrong.exit_code == 3
    assert "not a tensor or a dict of tensors" in wrong.stderr
    (tmp_path / "text.pt").write_text("not a batch")
    garbage = runner.invoke(app, [*base, str(tmp_path / "text.pt")])
    assert garbage.exit_code == 3
    assert len(garbage.stderr.strip().splitlines()) == 1
    both = runner.invoke(app, [*base, str(tmp_path / "list.pt"), "--input-shape", "4"])
    assert both.exit_code == 2
