"""The Hugging Face Trainer callback: a real Trainer on a tiny BERT built from a config."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from nndoctor.exceptions import InvalidParameterError, NNDoctorWarning, NonFiniteError
from nndoctor.stability.monitor import read_log
from nndoctor.stability.monitor.huggingface import MonitorCallback

ATTENTION = "bert.encoder.layer.1.attention.self"


class Tokens(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """48 random sequences of 12 tokens with random binary labels."""

    def __init__(self, n: int = 48) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randint(0, 100, (n, 12), generator=g)
        self.y = torch.randint(0, 2, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "input_ids": self.x[i],
            "attention_mask": torch.ones(12, dtype=torch.long),
            "labels": self.y[i],
        }


class Recorder(TrainerCallback):
    """Stands for a report_to integration: keeps every log record it is given."""

    def __init__(self) -> None:
        self.logs: list[dict[str, Any]] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        self.logs.append(dict(logs))


def tiny_bert() -> BertForSequenceClassification:
    """A 2-layer BERT; no dropout and eager attention (see the note below)."""
    # Without these the monitor's re-run (before the non-finite localization of the arch-monitor
    # branch) could blame an allocation: dropout's empty_like mask, or SDPA's buffers, may hold
    # NaN bits before they are filled. The fault must be the injected one, not uninitialized
    # memory.
    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=100,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        attn_implementation="eager",
    )
    return BertForSequenceClassification(config)


def make_trainer(model: Any, out: Path, callbacks: list[Any]) -> Trainer:
    args = TrainingArguments(
        output_dir=str(out),
        max_steps=6,
        per_device_train_batch_size=8,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
    )
    return Trainer(model=model, args=args, train_dataset=Tokens(), callbacks=callbacks)


def inject_nan(trainer: Trainer, model: Any, at_step: int) -> None:
    """Multiply the attention's output by inf during optimizer step ``at_step``."""

    def hook(module: Any, inputs: Any, output: Any) -> Any:
        if trainer.state.global_step == at_step - 1:
            return (output[0] * float("inf"), *output[1:])
        return None

    model.get_submodule(ATTENTION).register_forward_hook(hook)


def test_healthy_run_writes_the_log_under_output_dir(tmp_path: Path) -> None:
    model = tiny_bert()
    cb = MonitorCallback()
    trainer = make_trainer(model, tmp_path, [cb])
    trainer.train()
    assert cb.monitor is not None
    assert cb.monitor.n_hooks == 0  # closed on train end
    assert cb.monitor.step_count == 6
    # a healthy BERT: no warning and no error (the depth rule compares layers of one role, so
    # the query/key gradients, ~1e-6 of the head's at initialization, are not read as vanishing)
    alarms = [(f.check, f.layer) for f in cb.findings if f.severity in ("warning", "error")]
    assert alarms == []
    log = read_log(tmp_path / "nndoctor")  # the default: under the Trainer's output_dir
    assert log.steps.tolist() == [1, 2, 3, 4, 5, 6]
    assert bool(torch.isfinite(torch.as_tensor(log.loss)).all())  # outputs.loss was recorded
    # every finding went to the log history, as numbers
    keyed = {k for rec in trainer.state.log_history for k in rec if k.startswith("nndoctor/")}
    assert keyed >= {f"nndoctor/{f.check}/{f.layer}" for f in cb.findings}


def test_nan_in_attention_is_localized_and_stops_training(tmp_path: Path) -> None:
    model = tiny_bert()
    cb = MonitorCallback(log_dir=tmp_path / "mon", on_nonfinite="raise")
    trainer = make_trainer(model, tmp_path, [cb])
    inject_nan(trainer, model, at_step=3)
    with pytest.raises(NonFiniteError) as info:
        trainer.train()
    assert info.value.module == ATTENTION
    assert info.value.step == 3
    assert trainer.state.global_step == 2  # step 3 never completed: training stopped there
    assert cb.monitor is not None
    assert cb.monitor.n_hooks == 0  # closed on the exception
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())  # weights restored
    log = read_log(tmp_path / "mon")
    assert [loc.module for loc in log.nonfinite] == [ATTENTION]


def test_nan_finding_reaches_the_loggers_with_add_to(tmp_path: Path) -> None:
    model = tiny_bert()
    recorder = Recorder()
    cb = MonitorCallback(log_dir=tmp_path / "mon", on_nonfinite="warn", every=1)
    trainer = make_trainer(model, tmp_path, [recorder])
    cb.add_to(trainer)
    inject_nan(trainer, model, at_step=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.train()
    assert any(issubclass(w.category, NNDoctorWarning) for w in caught)
    key = f"nndoctor/nonfinite/{ATTENTION}"
    (seen,) = [rec for rec in recorder.logs if key in rec]  # the integration saw it, once
    assert seen["nndoctor/errors"] >= 1
    (hist,) = [rec for rec in trainer.state.log_history if key in rec]
    assert hist["step"] == 3


def test_model_without_trainable_parameters_is_refused(tmp_path: Path) -> None:
    model = tiny_bert()
    model.requires_grad_(False)
    cb = MonitorCallback()
    trainer = make_trainer(model, tmp_path, [cb])
    with pytest.raises(InvalidParameterError, match="no trainable parameters"):
        cb.on_train_begin(trainer.args, trainer.state, trainer.control, model=model)


def test_add_to_needs_a_trainer() -> None:
    with pytest.raises(InvalidParameterError, match=r"transformers\.Trainer"):
        MonitorCallback().add_to(object())


def test_without_transformers_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    from nndoctor.exceptions import MissingDependencyError

    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers fails
    monkeypatch.delitem(sys.modules, "nndoctor.stability.monitor.huggingface")
    with pytest.raises(MissingDependencyError, match=r"nndoctor\[transformers\]"):
        importlib.import_module("nndoctor.stability.monitor.huggingface")


def test_the_lightning_options_reach_the_monitor(tmp_path: Path) -> None:
    """every, log_dir and tensorboard, as the Lightning callback takes them."""
    cb = MonitorCallback(every=2, log_dir=tmp_path / "mon", tensorboard=True, on_nonfinite="warn")
    trainer = make_trainer(tiny_bert(), tmp_path / "out", [cb])
    trainer.train()
    assert read_log(tmp_path / "mon").steps.tolist() == [2, 4, 6]
    assert any((tmp_path / "mon" / "tensorboard").iterdir())
    assert not (tmp_path / "out" / "nndoctor").exists()  # the given log_dir wins
