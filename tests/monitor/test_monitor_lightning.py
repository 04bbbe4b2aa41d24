"""The Lightning callback: a monitored fit, findings, hooks removed afterwards."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.stability.monitor import read_log
from nndoctor.stability.monitor.lightning import MonitorCallback


class Net(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
        with torch.no_grad():
            self.net[0].bias.fill_(-10.0)  # dead ReLU units

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_lightning_callback(tmp_path: Path) -> None:
    torch.manual_seed(0)
    data = TensorDataset(torch.rand(64, 8), torch.randint(0, 2, (64,)))
    cb = MonitorCallback(log_dir=tmp_path / "mon")
    trainer = pl.Trainer(
        max_steps=4,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accumulate_grad_batches=2,
        callbacks=[cb],
        default_root_dir=tmp_path,
    )
    model = Net()
    trainer.fit(model, DataLoader(data, batch_size=8))
    assert cb.monitor is not None
    assert cb.monitor.step_count == 4  # optimizer steps, not micro-batches
    assert cb.monitor.n_hooks == 0
    assert [(f.check, f.layer) for f in cb.findings if f.severity == "error"] == [
        ("dead_units", "net.1")
    ]
    log = read_log(tmp_path / "mon")
    assert log.steps.tolist() == [1, 2, 3, 4]
    assert all(v == v for v in log.loss)  # the loss was logged
